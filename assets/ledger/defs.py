"""The ledger in Dagster, declared in one place: its assets, checks, jobs, sensors and schedules."""

import dagster as dg

from assets.ledger.assets import LEDGER_ASSETS
from assets.ledger.checks import LEDGER_CHECKS
from assets.ledger.jobs import LEDGER_JOBS
from sensors.ledger import LEDGER_SCHEDULES, LEDGER_SENSORS

defs = dg.Definitions(
    assets=LEDGER_ASSETS, asset_checks=LEDGER_CHECKS, jobs=LEDGER_JOBS,
    schedules=LEDGER_SCHEDULES, sensors=LEDGER_SENSORS,
)
