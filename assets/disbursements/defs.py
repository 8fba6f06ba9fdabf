"""G2P disbursements in Dagster, in one place: a job per pipeline step and the sensor that starts it, and
the daily `disbursement_status` asset with its checks."""

import dagster as dg

from assets.disbursements.status import STATUS_ASSETS
from assets.disbursements.steps import STEP_JOBS
from sensors.disbursements import DISBURSEMENT_SENSORS

defs = dg.Definitions(assets=STATUS_ASSETS, jobs=list(STEP_JOBS.values()), sensors=DISBURSEMENT_SENSORS)
