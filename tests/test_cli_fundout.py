"""`ops-pipeline fundout ...` and `notify dispatch` as ops run them, on the embedded default with the
built-in bank sandbox: configure (create, then change), run a slot, read the batch, cash out, errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings

CLI = str(Path(sys.executable).with_name("ops-pipeline"))


def run(home, *args, code=0):
    env = {**os.environ, "OPS_HOME": str(home)}
    for name in ("OPS_DATABASE_URL", "OPS_BANK_URL", "OPS_SMTP_URL", "OPS_WEBHOOK_URL"):
        env.pop(name, None)
    p = subprocess.run([CLI, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == code, (p.stdout, p.stderr)
    return p.stdout + p.stderr


def test_fundout_from_the_command_line(tmp_path):
    home = tmp_path / "home"
    ws = Workspace(make_settings(home))
    ws.init()
    post_entries(ws, [Entry("ADJUSTMENT", "f1", "B1", "EUR", 10_000, "adjustment")], "funding")
    ws.close()
    assert "day: '7' is not allowed" in run(home, "fundout", "config", "B1", "--set", "freqType=W", "--set", "day=7",
                                            code=1)
    made = json.loads(run(home, "fundout", "config", "B1", "--set", "freqType=D", "--set", "hour=09"))
    assert (made["freq_type"], made["hour"], made["enabled"]) == ("D", 9, False)
    assert "hour: '\u0669' is not allowed" in run(home, "fundout", "config", "B1", "--set", "hour=\u0669", code=1)
    changed = json.loads(run(home, "fundout", "config", "B1", "--set", "enabled=true", "--set", "minimumBalance=25"))
    assert (changed["id"], changed["hour"], changed["enabled"], changed["minimum_balance"]) == (made["id"], 9, True, "25")
    report = json.loads(run(home, "fundout", "run", "--at", "2026-11-21T09:30:00Z"))
    assert (report["slot"], report["summary"]["paid"], report["summary"]["paid_amounts"]) == (
        "2026-11-21T09:00:00+00:00", 1, {"EUR": "75.00"})
    assert json.loads(run(home, "fundout", "batch", report["id"])) == report
    assert "Error: Invalid value for 'BATCH_ID'" in run(home, "fundout", "batch", 2**64, code=2)
    listed = json.loads(run(home, "fundout", "batches", "--status", "done", "--format", "json"))
    assert [(b["id"], b["slot"], b["paid"]) for b in listed] == [(report["id"], "2026-11-21T09:00:00+00:00", 1)]
    assert "exceeds the available 25.00 EUR" in run(home, "fundout", "cashout", "B1", "25.01", code=1)
    assert "amount: '1000000000000000000000000000000' is too large" in run(
        home, "fundout", "cashout", "B1", "1" + "0" * 30, code=1)
    cashed = json.loads(run(home, "fundout", "cashout", "B1", "25.00", "--idempotency-key", "k1"))
    assert (cashed["status"], cashed["amount"], cashed["kind"]) == ("posted", "25.00", "manual")
    rows = json.loads(run(home, "fundout", "payouts", "B1", "--format", "json"))
    assert [(r["kind"], r["amount"], r["status"]) for r in rows] == [("manual", "25.00", "posted"),
                                                                      ("scheduled", "75.00", "posted")]
    assert run(home, "notify", "dispatch") == "sent=0 retrying=0 dead=0 unsent=2\n"
