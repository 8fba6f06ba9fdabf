"""What drives the job queue from Dagster: the worker sensor, the housekeeping and the wallet-low schedules.

The worker sensor launches runs only while jobs are claimable, each run taking a bounded batch. Its run
keys come from the jobs a run is meant for, `(id, updated_at)` of each in claim order: a tick repeated
after a crash, or a tick while that run still waits to start, asks for the same key and Dagster drops it;
a new job, or a job back from a retry (a new `updated_at`), makes a new key. Should a run end without
taking its jobs (it failed before claiming, or others took the front of the queue), the key gets the next
generation (`.1`, `.2`, ...), so those jobs are never left to wait for a key already used.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

import dagster as dg

from assets.jobqueue.jobs import (
    DEFAULT_BATCH,
    JOB_IDS_TAG,
    RULE_OP,
    WORKER_OP,
    WalletLowConfig,
    WorkerConfig,
    job_ids_tag,
    jobqueue_housekeeping_job,
    jobqueue_worker_job,
    wallet_low_rule_job,
)
from ops_pipeline.errors import InvalidInput
from ops_pipeline.jobqueue import rules, service
from ops_pipeline.jobqueue.jobtypes import AUTOMATED_TYPES
from ops_pipeline.settings import Settings
from resources.ops import OpsResource

TIMEZONE = Settings.from_env().timezone
BATCH = DEFAULT_BATCH  # jobs per worker run
RUNS_PER_TICK = 2  # the instance runs two at a time (dagster.yaml)
BATCH_TAG = "ops/claim_batch"
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
THRESHOLDS_ENV = "OPS_WALLET_THRESHOLDS"


def batch_key(batch: list[tuple[int, datetime]]) -> str:
    """Names the claimable turn of these jobs: first and last id, and a digest of every (id, updated_at)."""
    turns = ";".join(f"{job_id}@{updated.isoformat()}" for job_id, updated in batch)
    return f"jobs-{batch[0][0]}-{batch[-1][0]}-{hashlib.sha256(turns.encode()).hexdigest()[:16]}"


def worker_request(instance: dg.DagsterInstance, batch: list[tuple[int, datetime]]) -> dg.RunRequest:
    """The run for `batch`: generation n after n runs for it ended; the same key while one is under way."""
    base = batch_key(batch)
    runs = instance.get_runs(dg.RunsFilter(job_name=jobqueue_worker_job.name, tags={BATCH_TAG: base}))
    generation = sum(run.status in FINISHED for run in runs)
    return dg.RunRequest(
        run_key=f"{base}.{generation}",
        run_config=dg.RunConfig(ops={WORKER_OP: WorkerConfig(limit=BATCH)}),
        tags={BATCH_TAG: base, JOB_IDS_TAG: job_ids_tag(job_id for job_id, _ in batch)},
    )


@dg.sensor(job=jobqueue_worker_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING)
def jobqueue_worker_sensor(
    context: dg.SensorEvaluationContext, ops: OpsResource
) -> dg.SensorResult | dg.SkipReason:
    """A worker run per batch of up to BATCH claimable jobs, at most RUNS_PER_TICK runs per tick."""
    with ops.workspace() as ws:
        waiting = service.claimable(ws)
        upcoming = service.queue(ws).peek(BATCH * RUNS_PER_TICK, AUTOMATED_TYPES) if waiting else []
    if not upcoming:
        return dg.SkipReason("no claimable jobs")
    batches = [upcoming[i : i + BATCH] for i in range(0, len(upcoming), BATCH)]
    return dg.SensorResult(run_requests=[worker_request(context.instance, b) for b in batches])


jobqueue_housekeeping_schedule = dg.ScheduleDefinition(
    name="jobqueue_housekeeping_schedule", job=jobqueue_housekeeping_job, cron_schedule="*/5 * * * *",
    execution_timezone=TIMEZONE, default_status=dg.DefaultScheduleStatus.RUNNING,
)


def wallet_thresholds(env=os.environ) -> list[rules.WalletThreshold]:
    """`OPS_WALLET_THRESHOLDS`: a JSON list of wallets (see `ops_pipeline.jobqueue.rules`), or @FILE."""
    text = (env.get(THRESHOLDS_ENV) or "").strip()
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        return rules.parse_thresholds(json.loads(text)) if text else []
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{THRESHOLDS_ENV}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


@dg.schedule(job=wallet_low_rule_job, cron_schedule="*/15 * * * *", execution_timezone=TIMEZONE,
             default_status=dg.DefaultScheduleStatus.RUNNING)
def wallet_low_rule_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """The wallet-low rule every 15 minutes over the wallets of `OPS_WALLET_THRESHOLDS`; a skip without."""
    thresholds = wallet_thresholds()
    if not thresholds:
        return dg.SkipReason(f"{THRESHOLDS_ENV} is not set: no wallet to watch")
    config = [{k: str(v) for k, v in t.model_dump().items()} for t in thresholds]
    return dg.RunRequest(run_config=dg.RunConfig(ops={RULE_OP: WalletLowConfig(thresholds=config)}))


JOBQUEUE_SENSORS = [jobqueue_worker_sensor]
JOBQUEUE_SCHEDULES = [jobqueue_housekeeping_schedule, wallet_low_rule_schedule]
