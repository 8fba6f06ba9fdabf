"""`ops-pipeline disbursements run-step STEP` and `status ID` as ops run them (embedded default, sandbox)."""

import json

from ops_pipeline.disbursements.pipeline import STEPS
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings
from tests.test_g2p_cli import run
from tests.test_g2p_steps import world


def test_steps_and_status_from_the_command_line(tmp_path):
    home = tmp_path / "home"
    ws = Workspace(make_settings(home))
    ws.init()
    sim, env, made = world(ws, batches_of=(4,))
    ws.close()
    ran = [json.loads(run(home, "disbursements", "run-step", step, "--format", "json"))[0] for step in STEPS]
    assert [(r["step"], r["claimed"], r["processed"], r["errors"]) for r in ran] == [
        (step, 1, 1, 0) for step in STEPS]
    shown = json.loads(run(home, "disbursements", "status", env.id, "--format", "json"))
    assert shown["envelope"]["funds_blocked"] == "FUNDS_BLOCK_SUCCESS"
    assert [s["status"] for s in shown["steps"]] == ["PROCESSED", "PROCESSED"]
    first = made[0].disbursement_ids[0]
    (item,) = json.loads(run(home, "disbursements", "status", first, "--format", "json"))
    assert (item["id"], item["amount"]) == (first, "100.00")
    assert item["status"] in ("SHIPPED", "FAILED")
    payments = sim.state()["g2p_payments"]
    assert sum(payments.get(r, {}).get("status") == "paid" for r in made[0].disbursement_ids) == (
        shown["envelope"]["shipped_count"])
    missing = "00000000-0000-4000-8000-000000000000"
    assert run(home, "disbursements", "status", missing, code=1).startswith("error: disbursement_id: no")
    assert "not one of" in run(home, "disbursements", "run-step", "paint", code=2)
