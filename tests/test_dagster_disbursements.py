"""The G2P pipeline in Dagster: a sensor per step (run keys per turn of the waiting rows), step runs on a
real instance taking an envelope through every step with the sandbox mapper and bank."""

import dagster as dg
import pytest

import definitions
from ops_pipeline.disbursements import envelopes
from ops_pipeline.disbursements.pipeline import STEPS
from resources.ops import OpsResource
from sensors.disbursements import DISBURSEMENT_SENSORS, TURN_TAG
from tests.test_g2p_steps import world

DEFS = definitions.defs
RUN_KEY_TAG = "dagster/run_key"
SENSORS = dict(zip(STEPS, DISBURSEMENT_SENSORS, strict=True))


@pytest.fixture
def ops(sqlite_ws, monkeypatch):
    monkeypatch.setenv("OPS_HOME", str(sqlite_ws.home))
    for name in ("OPS_DATABASE_URL", "OPS_LAKE_URI", "OPS_G2P_BANK_URL", "OPS_G2P_MAPPER_URL"):
        monkeypatch.delenv(name, raising=False)
    return OpsResource(ops_home=str(sqlite_ws.home))


def tick(step, ops, instance):
    with dg.build_sensor_context(instance=instance, resources={"ops": ops}) as context:
        return SENSORS[step](context)


def launch(step, request, instance) -> dg.ExecuteInProcessResult:
    job = DEFS.resolve_job_def(f"disbursements_{step}_job")
    return job.execute_in_process(instance=instance, run_config=request.run_config,
                                  tags={**request.tags, RUN_KEY_TAG: request.run_key})


def test_each_step_sensor_launches_a_run_while_work_waits(sqlite_ws, ops):
    sim, env, _made = world(sqlite_ws, batches_of=(5, 5))
    with dg.instance_for_test() as instance:
        for step in STEPS:
            request = tick(step, ops, instance)
            assert isinstance(request, dg.RunRequest), step
            assert request.run_key.startswith(f"{step}-") and request.run_key.endswith(".0")
            assert tick(step, ops, instance).run_key == request.run_key  # a repeated tick: the same key
            result = launch(step, request, instance)
            assert result.success
            done = result.output_for_node(f"run_disbursement_{step}")
            assert (done["claimed"], done["errors"]) == (1 if step.startswith("funds") else 2, 0), step
            assert isinstance(tick(step, ops, instance), dg.SkipReason)
        runs = instance.get_runs(dg.RunsFilter(tags={TURN_TAG: request.tags[TURN_TAG]}))
        assert len(runs) == 1
    status = envelopes.envelope_status(sqlite_ws, env.id).envelope
    assert status.funds_blocked == "FUNDS_BLOCK_SUCCESS" and status.shipped_count > 0
    paid = [p for p in sim.state()["g2p_payments"].values() if p["status"] == "paid"]
    assert len(paid) == status.shipped_count


def test_the_code_location_declares_the_step_jobs_and_sensors():
    names = {s.name for s in DEFS.sensors}
    assert {f"disbursements_{step}_sensor" for step in STEPS} <= names
    for step in STEPS:
        assert DEFS.resolve_job_def(f"disbursements_{step}_job") is not None
