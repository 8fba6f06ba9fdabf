"""The hourly fund-out schedule (minute 00, UTC slots) and the notification sensor."""

import dagster as dg

from assets.fundout.jobs import SLOT_TAG, FundoutRunConfig, fundout_batch_job, notifications_dispatch_job
from ops_pipeline.notify import outbox
from resources.ops import OpsResource


@dg.schedule(
    job=fundout_batch_job,
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def fundout_hourly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """One run per slot (its run key), so a repeated tick never starts a second run for it."""
    slot = context.scheduled_execution_time.replace(minute=0, second=0, microsecond=0).isoformat()
    return dg.RunRequest(
        run_key=f"fundout-{slot}",
        tags={SLOT_TAG: slot},
        run_config=dg.RunConfig(ops={"run_fundout_batch": FundoutRunConfig(at=slot)}),
    )


@dg.sensor(
    job=notifications_dispatch_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
)
def notifications_sensor(context: dg.SensorEvaluationContext, ops: OpsResource):
    """A dispatch run while notifications are due (new, or past their retry backoff); the key changes with
    every new row and every attempt, so a retry falling due asks for a run of its own."""
    with ops.workspace() as ws, ws.engine.connect() as conn:
        backlog = outbox.due(conn)
    if not backlog.count:
        return dg.SkipReason("no notification waits")
    return dg.RunRequest(run_key=f"notify-{backlog.newest_id}-{backlog.attempts}")


FUNDOUT_SCHEDULES = [fundout_hourly_schedule]
FUNDOUT_SENSORS = [notifications_sensor]
