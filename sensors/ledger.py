"""What drives the ledger: files dropped in `OPS_HOME/landing/{confirmed,reconciled}/` launch the ingest job,
one run per file; schedules in the business time zone (OPS_TIMEZONE) take a snapshot every 15 minutes and
run the checks, the hold expiry and the release of due reserves hourly, and compact the log every
10 minutes."""

import json
import time

import dagster as dg

from assets.ledger.assets import ingest_run_config
from assets.ledger.jobs import (
    balance_snapshot_job,
    compact_log_job,
    expire_holds_job,
    ledger_checks_job,
    ledger_ingest_job,
    release_reserves_job,
)
from ops_pipeline.ledger.landing import landing_files
from ops_pipeline.settings import Settings
from resources.ops import OpsResource

TIMEZONE = Settings.from_env().timezone
RUNNING = dg.DefaultScheduleStatus.RUNNING
MAX_FILES_PER_TICK = 20
SETTLE_SECONDS = 1.0  # a file changed more recently may still be being written


@dg.sensor(job=ledger_ingest_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_files_sensor(
    context: dg.SensorEvaluationContext, ops: OpsResource
) -> dg.SensorResult | dg.SkipReason:
    """Request an ingest run per new landing file, in order of arrival, at most MAX_FILES_PER_TICK per tick.

    The cursor (arrival of the last file requested) only moves forward; the run key (kind, name, mtime,
    size) makes a repeated tick a no-op and a rewritten file a new run.
    """
    settings = ops.settings()
    after = tuple(json.loads(context.cursor)) if context.cursor else None
    new = [f for f in landing_files(settings) if after is None or f.arrival > after]
    settled_before = time.time_ns() - int(SETTLE_SECONDS * 1e9)
    ready = []
    for f in new[:MAX_FILES_PER_TICK]:
        if f.ctime_ns > settled_before:  # later arrivals are newer still
            break
        ready.append(f)
    if not ready:
        if new:
            return dg.SkipReason(f"{len(new)} new file(s) still being written in {settings.landing_dir}")
        return dg.SkipReason(f"no new files in {settings.landing_dir}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=f.run_key, run_config=ingest_run_config([(f.path, f.kind)]),
                          tags={"ops/file": f.path.name, "ops/kind": f.kind})
            for f in ready
        ],
        cursor=json.dumps(ready[-1].arrival),
    )


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
# live intake adds a file per group commit: compaction keeps the log (and every commit's cost) small
compact_log_schedule = dg.ScheduleDefinition(
    name="compact_log_schedule", job=compact_log_job, cron_schedule="*/10 * * * *",
    execution_timezone=TIMEZONE, default_status=RUNNING,
)

release_reserves_schedule = dg.ScheduleDefinition(
    name="release_reserves_schedule", job=release_reserves_job, cron_schedule="10 * * * *",
    execution_timezone=TIMEZONE, default_status=RUNNING,
)

LEDGER_SCHEDULES = [
    balance_snapshot_schedule, ledger_checks_schedule, expire_holds_schedule, compact_log_schedule,
    release_reserves_schedule,
]
LEDGER_SENSORS = [landing_files_sensor]
