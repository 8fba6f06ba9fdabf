"""Jobs of the ops job queue: a worker run, the housekeeping run and the wallet-low rule.

Domain work lives in `ops_pipeline.jobqueue`; these ops call it and make it visible in Dagster. A run tags
itself with the queue jobs it touched (`ops/job_ids`), and the queue's history names the worker
`dagster-<run id>`, so a job leads to its run and a run to its jobs.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from ops_pipeline.jobqueue import rules, service
from ops_pipeline.jobqueue.worker import Worker
from resources.ops import OpsResource

JOB_IDS_TAG = "ops/job_ids"
WORKER_OP = "process_claimable_jobs"
RULE_OP = "evaluate_wallet_low"
DEFAULT_BATCH = 50
MAX_BATCH = 500


def job_ids_tag(ids) -> str:
    """The `ops/job_ids` tag value: ids in order, comma-separated; `none` for no job."""
    return ",".join(str(i) for i in ids) or "none"


class _ToDagsterLog(logging.Handler):
    def __init__(self, log: dg.DagsterLogManager):
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.log.log(record.levelno, record.getMessage())


@contextmanager
def queue_logs_in(context: dg.OpExecutionContext) -> Iterator[None]:
    """Send the queue's own log lines (each action of each job, retries, lost leases) to the run's log."""
    logger = logging.getLogger("ops_pipeline.jobqueue")
    handler, level = _ToDagsterLog(context.log), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def tag_job_ids(context: dg.OpExecutionContext, ids: list[int]) -> None:
    """Set the run's `ops/job_ids` to the jobs it actually touched, unless the sensor already knew them."""
    value, known = job_ids_tag(ids), context.run.tags.get(JOB_IDS_TAG)
    if value != known and (ids or known is not None):
        context.instance.add_run_tags(context.run_id, {JOB_IDS_TAG: value})


class WorkerConfig(dg.Config):
    limit: int = Field(default=DEFAULT_BATCH, ge=1, le=MAX_BATCH, description="Most jobs this run claims.")


@dg.op(name=WORKER_OP)
def process_claimable_jobs(context: dg.OpExecutionContext, config: WorkerConfig, ops: OpsResource) -> dict:
    """Claim up to `limit` jobs as worker `dagster-<run id>` and run them; the outcome of each is logged."""
    with ops.workspace() as ws, queue_logs_in(context):
        worker = Worker(ws, worker_id=f"dagster-{context.run_id}")
        try:
            counts = worker.run_once(config.limit)
        finally:
            worker.close()
    for job_id, outcome in counts.outcomes.items():
        level = logging.INFO if outcome == "completed" else logging.WARNING
        context.log.log(level, f"job {job_id}: {outcome}")
    tag_job_ids(context, list(counts.outcomes))
    summary = {"claimed": counts.claimed, "completed": counts.completed, "retried": counts.retried,
               "failed": counts.failed, "lost": counts.lost}
    context.add_output_metadata({**summary, "job_ids": job_ids_tag(counts.outcomes),
                                 "console": ops.console_link("/jobs")})
    return summary


@dg.job(description="Claim a bounded batch of queue jobs and run their actions (launched by a sensor).")
def jobqueue_worker_job() -> None:
    process_claimable_jobs()


@dg.op
def housekeep_jobs(context: dg.OpExecutionContext, ops: OpsResource) -> dict:
    """The rescuer (jobs whose worker died go back to the queue, or fail after their last attempt) and the
    expiry sweeper (waiting jobs past `expires_at` become Expired)."""
    with ops.workspace() as ws:
        done = service.housekeep(ws)
    for what, ids in done.items():
        if ids:
            context.log.info(f"{what}: {job_ids_tag(ids)}")
    tag_job_ids(context, sorted(i for ids in done.values() for i in ids))
    return {what: len(ids) for what, ids in done.items()}


@dg.job(description="Rescue jobs whose worker stopped and expire jobs past their expiry.")
def jobqueue_housekeeping_job() -> None:
    housekeep_jobs()


class WalletLowConfig(dg.Config):
    thresholds: list[dict[str, str]] = Field(
        default_factory=list,
        description='Wallets to watch, e.g. [{"distributor_id": "D1", "currency": "INR", '
        '"threshold": "10000.00", "target": "50000.00"}].',
    )


@dg.op(name=RULE_OP)
def evaluate_wallet_low(context: dg.OpExecutionContext, config: WalletLowConfig, ops: OpsResource) -> dict:
    """Rule wallet-low: one replenishment job per wallet below its threshold, never two at once."""
    thresholds = rules.parse_thresholds(config.thresholds)
    with ops.workspace() as ws:
        outcomes = rules.wallet_low(ws, thresholds)
    for o in outcomes:
        if o.job_id is None:
            context.log.info(f"{o.subject}: {o.observed} is not below {o.threshold}")
        else:
            context.log.info(f"{o.subject}: {o.observed} below {o.threshold}: job {o.job_id}"
                             + (" created" if o.created else " already live"))
    created = [o.job_id for o in outcomes if o.created]
    tag_job_ids(context, created)
    low = sum(o.job_id is not None for o in outcomes)
    return {"wallets": len(outcomes), "low": low, "created": len(created)}


@dg.job(description="Evaluate the wallet-low rule over the configured distributor wallets.")
def wallet_low_rule_job() -> None:
    evaluate_wallet_low()


JOBQUEUE_JOBS = [jobqueue_worker_job, jobqueue_housekeeping_job, wallet_low_rule_job]
