"""What drives the G2P disbursement pipeline from Dagster: one sensor per step.

A sensor launches a run of its step's job only while rows wait for that step (ready, or PROCESSING past an
expired lease). Its run key names this turn of those rows, a digest of their (id, updated_at): a tick
repeated while the run is under way asks for the same key and Dagster drops it; a row that moved (a retry
after ERROR, a recovered lease) makes a new key. Should a run end leaving the same rows waiting (it failed
before claiming), the key gets the next generation (`.1`, `.2`, ...), as for the job queue's worker.
"""

import hashlib
from datetime import datetime

import dagster as dg

from assets.disbursements.steps import STEP_JOBS, StepConfig, op_name
from ops_pipeline.disbursements.pipeline import STEPS, waiting
from resources.ops import OpsResource

LIMIT = 20  # rows per run
TURN_TAG = "ops/disbursement_turn"
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def turn_key(step: str, rows: list[tuple[str, datetime]]) -> str:
    turns = ";".join(f"{owner}@{updated.isoformat()}" for owner, updated in rows)
    return f"{step}-{hashlib.sha256(turns.encode()).hexdigest()[:24]}"


def step_request(instance: dg.DagsterInstance, step: str, rows: list[tuple[str, datetime]]) -> dg.RunRequest:
    base = turn_key(step, rows)
    runs = instance.get_runs(dg.RunsFilter(job_name=STEP_JOBS[step].name, tags={TURN_TAG: base}))
    generation = sum(run.status in FINISHED for run in runs)
    return dg.RunRequest(run_key=f"{base}.{generation}", tags={TURN_TAG: base},
                         run_config=dg.RunConfig(ops={op_name(step): StepConfig(limit=LIMIT)}))


def _step_sensor(step: str) -> dg.SensorDefinition:
    @dg.sensor(name=f"disbursements_{step}_sensor", job=STEP_JOBS[step], minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"A `{step}` run while envelopes or batches wait for that step.")
    def sensor(context: dg.SensorEvaluationContext, ops: OpsResource) -> dg.RunRequest | dg.SkipReason:
        with ops.workspace() as ws:
            rows = waiting(ws, step, LIMIT)
        if not rows:
            return dg.SkipReason(f"nothing waits for {step}")
        return step_request(context.instance, step, rows)

    return sensor


DISBURSEMENT_SENSORS = [_step_sensor(step) for step in STEPS]
