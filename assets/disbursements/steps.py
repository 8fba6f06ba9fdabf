"""One job per step of the G2P disbursement pipeline: a run claims up to `limit` envelopes or batches
ready for the step (as worker `dagster-<run id>`) and does them (`ops_pipeline.disbursements.pipeline`)."""

import dagster as dg
from pydantic import Field

from ops_pipeline.disbursements.pipeline import STEPS, run_step
from resources.ops import OpsResource

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


class StepConfig(dg.Config):
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Most rows this run claims.")


def op_name(step: str) -> str:
    return f"run_disbursement_{step}"


def _step_job(step: str) -> dg.JobDefinition:
    @dg.op(name=op_name(step))
    def run(context: dg.OpExecutionContext, config: StepConfig, ops: OpsResource) -> dict:
        with ops.workspace() as ws:
            ran = run_step(ws, step, worker=f"dagster-{context.run_id}", limit=config.limit)
        summary = {"claimed": ran.claimed, "processed": ran.processed, "errors": ran.errors, "lost": ran.lost}
        context.add_output_metadata(summary)
        if ran.errors:
            context.log.warning(f"{step}: {ran.errors} of {ran.claimed} ended in ERROR (retried later)")
        return summary

    run.__doc__ = f"Claim what is ready for the `{step}` step and do it."

    @dg.job(name=f"disbursements_{step}_job", tags={"ops/domain": "disbursements"},
            description=f"The `{step}` step of the G2P disbursement pipeline.")
    def step_job():
        run()

    return step_job


STEP_JOBS = {step: _step_job(step) for step in STEPS}
