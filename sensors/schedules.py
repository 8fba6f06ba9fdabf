"""Schedules in the business time zone (OPS_TIMEZONE): snapshot every 15 minutes, checks and holds hourly."""

import dagster as dg

from assets.jobs import balance_snapshot_job, expire_holds_job, ledger_checks_job
from ops_pipeline.settings import Settings

TIMEZONE = Settings.from_env().timezone
RUNNING = dg.DefaultScheduleStatus.RUNNING

balance_snapshot_schedule = dg.ScheduleDefinition(
    name="balance_snapshot_schedule", job=balance_snapshot_job, cron_schedule="*/15 * * * *",
    execution_timezone=TIMEZONE, default_status=RUNNING,
)
ledger_checks_schedule = dg.ScheduleDefinition(
    name="ledger_checks_schedule", job=ledger_checks_job, cron_schedule="5 * * * *",
    execution_timezone=TIMEZONE, default_status=RUNNING,
)
expire_holds_schedule = dg.ScheduleDefinition(
    name="expire_holds_schedule", job=expire_holds_job, cron_schedule="0 * * * *",
    execution_timezone=TIMEZONE, default_status=RUNNING,
)

LEDGER_SCHEDULES = [balance_snapshot_schedule, ledger_checks_schedule, expire_holds_schedule]
