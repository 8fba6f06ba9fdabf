"""Fund-out and notification runs: one run per hourly slot, with its counts and amounts in metadata.

Domain work lives in `ops_pipeline.fundout` and `ops_pipeline.notify`; these ops call it.
"""

from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from ops_pipeline.fundout import batch
from ops_pipeline.fundout.batch import BatchReport
from ops_pipeline.notify import dispatch
from resources.ops import OpsResource

SLOT_TAG = "ops/fundout_slot"


class FundoutRunConfig(dg.Config):
    at: str | None = Field(default=None, description="ISO 8601 time in the slot to run; default now.")


def batch_metadata(report: BatchReport, ops: OpsResource) -> dict:
    s = report.summary
    return {
        "console": ops.console_link(f"/fundout/batches/{report.id}"),
        "batch_id": report.id,
        "slot": report.slot.isoformat(),
        "status": report.status,
        **{k: getattr(s, k) for k in ("due", "paid", "skipped", "failed", "pending")},
        "amounts_paid": dg.MetadataValue.json({c: str(v) for c, v in s.paid_amounts.items()}),
        "amounts_failed": dg.MetadataValue.json({c: str(v) for c, v in s.failed_amounts.items()}),
    }


@dg.op(out=dg.Out(BatchReport))
def run_fundout_batch(context: dg.OpExecutionContext, config: FundoutRunConfig, ops: OpsResource):
    """Missed slots of the last 24 h (older ones reported), then the slot of `at`; one output per slot."""
    at = datetime.fromisoformat(config.at) if config.at else datetime.now(UTC)
    with ops.workspace() as ws:
        reports = batch.run_due(ws, actor=f"dagster:{context.run_id}", now=at)
    for report in reports:
        s = report.summary
        context.log.info(
            f"slot {report.slot.isoformat()}: paid {s.paid}, skipped {s.skipped}, failed {s.failed}, "
            f"pending {s.pending}"
        )
        observed = batch_metadata(report, ops)
        context.log_event(dg.AssetObservation(asset_key="fundout_batches", metadata=observed))
    current = reports[-1]
    yield dg.Output(current, metadata=batch_metadata(current, ops))


@dg.job(
    description="Auto fund-out: pay every business due in the hourly slot, exactly once.",
    tags={"domain": "fundout"},
)
def fundout_batch_job() -> None:
    run_fundout_batch()


@dg.op
def dispatch_notifications(context: dg.OpExecutionContext, ops: OpsResource) -> dict:
    """Deliver due outbox rows by email and webhook; counts by outcome in metadata."""
    with ops.workspace() as ws:
        result = dispatch(ws)
    context.add_output_metadata(dict(result.counts))
    return result.counts


@dg.job(description="Deliver due notifications (email, webhook) from the outbox.")
def notifications_dispatch_job() -> None:
    dispatch_notifications()


FUNDOUT_JOBS = [fundout_batch_job, notifications_dispatch_job]
