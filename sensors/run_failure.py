"""Failed runs become audit records and tickets (source `run_failure`, reference the run id)."""

from datetime import UTC, datetime

import dagster as dg
from dagster_shared.error import SerializableErrorInfo

from ops_pipeline import audit
from ops_pipeline.tickets import sources
from resources.ops import OpsResource


def root_cause(error: SerializableErrorInfo) -> str:
    """The user's error under Dagster's wrappers, e.g. `InvalidInput: file: 'x.csv' lacks column(s) ...`."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING)
def run_failure_audit_sensor(context: dg.RunFailureSensorContext, ops: OpsResource) -> None:
    """Log every failed run of this code location, record it with its step errors in the audit trail, and
    open a ticket for it."""
    run = context.dagster_run
    errors = {
        event.step_key: root_cause(event.step_failure_data.error)
        for event in context.get_step_failure_events()
        if event.step_failure_data.error is not None
    }
    context.log.error(f"run {run.run_id} of {run.job_name} failed: {context.failure_event.message} {errors}")
    with ops.workspace() as ws:
        with ws.engine.begin() as conn:
            audit.record(
                conn, actor="dagster", entity_type="dagster_run", entity_id=run.run_id, action="failed",
                after={"job": run.job_name, "message": context.failure_event.message, "step_errors": errors,
                       "tags": {k: v for k, v in run.tags.items() if not k.startswith(".dagster")}},
            )
        summary = "; ".join(f"{step}: {error}" for step, error in errors.items())
        record = context.instance.get_run_record_by_id(run.run_id)
        ended = record.end_time if record and record.end_time else datetime.now(UTC).timestamp()
        failed_at = datetime.fromtimestamp(ended, UTC)
        sources.open_ticket_for_run_failure(
            ws, run.run_id, run.job_name, summary or context.failure_event.message or "", failed_at
        )
