"""The `ops-pipeline` command as a user runs it: output, exit codes (0 ok, 1 user error, 2 misuse)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from ops_pipeline.db.schema import balance_cache
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings
from tests.factories import op, write_merchants, write_ops

CLI = str(Path(sys.executable).with_name("ops-pipeline"))


@pytest.fixture
def run(tmp_path, db_url):
    env = {**os.environ, "OPS_HOME": str(tmp_path / "home"), "OPS_DATABASE_URL": db_url}

    def _run(*args, code=0):
        p = subprocess.run([CLI, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
        return p.stdout + p.stderr

    _run.home = tmp_path / "home"
    _run.db_url = db_url
    return _run


def test_a_day_of_ledger_work_from_the_command_line(run, tmp_path):
    assert "workspace ready" in run("init")
    assert "4 rows loaded (0 replaced), 4 in force" in run(
        "merchants", "load", write_merchants(tmp_path / "m.csv")
    )
    f = write_ops(tmp_path / "co.csv", [op("o1", "100.00"), op("o2", "-1")])
    assert "co.csv: 2 rows, 1 ingested (2 entries), 0 duplicate, 1 quarantined (1 new)" in run(
        "ledger", "ingest", f, "--kind", "confirmed"
    )
    assert "0 ingested (0 entries), 1 duplicate, 1 quarantined (0 new)" in run(
        "ledger", "ingest", f, "--kind", "confirmed"
    )
    run("ledger", "ingest", f, "--kind", "reconciled")
    out = json.loads(run("ledger", "balance", "M1", "--format", "json"))
    assert [(b["confirmed_balance"], b["settled_balance"], b["available"]) for b in out] == [
        ("96.80", "96.80", "96.80")
    ]
    assert "hold h1: 50.00 EUR held for M1" in run(
        "ledger", "hold", "M1", "--currency", "EUR", "--amount", "50", "--id", "h1"
    )
    assert "exceeds the available 46.80 EUR" in run(
        "ledger", "hold", "M1", "--currency", "EUR", "--amount", "50", code=1
    )
    assert "M1,EUR,96.80,96.80,50.00,46.80,0.00," in run("ledger", "balance", "M1", "--format", "csv")
    assert "released 50.00 EUR" in run("ledger", "release", "h1")
    assert "posted" in run(
        "ledger", "adjust", "M1", "--currency", "EUR", "--amount", "-6.80", "--reference", "T-1"
    )
    assert "M1,EUR,90.00,90.00,0.00,90.00," in run("ledger", "balance", "M1", "--format", "csv")
    as_of = run("ledger", "balance", "M1", "--as-of", "2026-11-01T09:00:00Z", code=1)
    assert "error: merchant_id: 'M1' has no balances" in as_of
    assert "cache matches the log" in run("ledger", "rebuild")
    rows = json.loads(
        run(
            "sql",
            "SELECT source, sum(amount)::VARCHAR AS total FROM balance_operations GROUP BY 1 ORDER BY 1",
            "--format",
            "json",
        )
    )
    assert rows == [
        {"source": "ADJUSTMENT", "total": "-6.8000"},
        {"source": "CO", "total": "96.8000"},
        {"source": "RO", "total": "96.8000"},
    ]
    assert "1 open" not in run("ledger", "reprocess")
    assert run("token", "--role", "ops", "--sub", "alice").count(".") == 2


def test_rebuild_exits_1_and_prints_the_difference(run, tmp_path):
    run("merchants", "load", write_merchants(tmp_path / "m.csv"))
    run("ledger", "ingest", write_ops(tmp_path / "co.csv", [op("o1", "100.00")]), "--kind", "confirmed")
    ws = Workspace(make_settings(run.home, run.db_url))
    with ws.engine.begin() as conn:
        conn.execute(update(balance_cache).values(confirmed_minor=1))
    ws.close()
    out = run("ledger", "rebuild", code=1)
    assert "1 differences" in out
    assert "M1           EUR       9680       1" in out


def test_user_errors_exit_1_with_one_line_and_misuse_exits_2(run, tmp_path):
    out = run("ledger", "ingest", tmp_path / "missing.csv", "--kind", "confirmed", code=1)
    assert out.strip().splitlines() == [f"error: file: '{tmp_path / 'missing.csv'}' does not exist"]
    bad = write_merchants(tmp_path / "bad.csv", [("p", "l", "s", "EUR", "M", "", "2.9", "abc")])
    assert "row 1: fee_fixed: 'abc' is not a non-negative decimal number" in run(
        "merchants", "load", bad, code=1
    )
    assert "error: query:" in run("sql", "SELECT * FROM nope", code=1)
    assert "error: role: 'root' is not one of" in run("token", "--role", "root", "--sub", "x", code=1)
    assert "Invalid value for '--kind'" in run("ledger", "ingest", "x.csv", "--kind", "settled", code=2)
    assert "No such command" in run("ledger", "explode", code=2)
    assert "Usage:" in run("ledger", "--help")
