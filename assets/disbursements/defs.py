"""G2P disbursements in Dagster, in one place: a job per pipeline step and the sensor that starts it."""

import dagster as dg

from assets.disbursements.steps import STEP_JOBS
from sensors.disbursements import DISBURSEMENT_SENSORS

defs = dg.Definitions(jobs=list(STEP_JOBS.values()), sensors=DISBURSEMENT_SENSORS)
