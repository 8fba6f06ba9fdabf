"""The one Dagster code location of ops-pipeline: every asset, check, job, schedule, sensor and resource."""

from __future__ import annotations

import dagster as dg

from assets.fundout import FUNDOUT_JOBS
from assets.jobqueue import JOBQUEUE_JOBS
from assets.jobs import LEDGER_JOBS
from assets.ledger import LEDGER_ASSETS
from assets.ledger_checks import LEDGER_CHECKS
from resources.lake_duckdb import LakeDuckDBResource
from resources.ops import OpsResource
from sensors.fundout import FUNDOUT_SCHEDULES, FUNDOUT_SENSORS
from sensors.jobqueue import JOBQUEUE_SCHEDULES, JOBQUEUE_SENSORS
from sensors.landing import landing_files_sensor
from sensors.run_failure import run_failure_audit_sensor
from sensors.schedules import LEDGER_SCHEDULES
from sensors.tickets import TICKETS_SENSORS

ops = OpsResource()

defs = dg.Definitions(
    assets=LEDGER_ASSETS,
    asset_checks=LEDGER_CHECKS,
    jobs=[*LEDGER_JOBS, *JOBQUEUE_JOBS, *FUNDOUT_JOBS],
    schedules=[*LEDGER_SCHEDULES, *JOBQUEUE_SCHEDULES, *FUNDOUT_SCHEDULES],
    sensors=[
        landing_files_sensor, *JOBQUEUE_SENSORS, *FUNDOUT_SENSORS, *TICKETS_SENSORS, run_failure_audit_sensor,
    ],
    resources={"ops": ops, "duckdb": LakeDuckDBResource(ops=ops)},
    # Steps are short and mostly sequential: one process per run starts faster than one per step.
    executor=dg.in_process_executor,
)
