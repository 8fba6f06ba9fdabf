"""The real Dagster code location: definitions, the ledger jobs run end to end, and workspace.yaml loading."""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import update

import definitions
from assets.ledger.assets import LEDGER_ASSETS
from assets.ledger.checks import FEE_RULE_PRESENT, LEDGER_CHECKS, REPLAY_EQUALS_CACHE, UNIQUE_OPERATION_KEYS
from ops_pipeline.cli.dev import REPO, install_instance_yaml
from ops_pipeline.db.schema import balance_cache
from ops_pipeline.ledger import balances, holds, ingest
from resources.lake_duckdb import LakeDuckDBResource
from resources.ops import OpsResource
from tests.factories import op, write_ops

DEFS = definitions.defs
LEDGER = {"confirmed_operations", "reconciled_operations", "balance_operations", "ledger_quarantine",
          "balance_cache", "balance_snapshot"}


@pytest.fixture
def home(sqlite_ws, monkeypatch):
    """OPS_HOME of an initialized workspace with the sample merchants, as the code location reads it."""
    monkeypatch.setenv("OPS_HOME", str(sqlite_ws.home))
    for name in ("OPS_DATABASE_URL", "OPS_LAKE_URI", "OPS_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    return sqlite_ws.home


def run(job: str, instance: dg.DagsterInstance, **kwargs) -> dg.ExecuteInProcessResult:
    return DEFS.resolve_job_def(job).execute_in_process(instance=instance, **kwargs)


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        e.materialization.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def test_definitions_hold_the_ledger():
    dg.Definitions.validate_loadable(DEFS)
    specs = {s.key.to_user_string(): s for s in DEFS.resolve_all_asset_specs() if s.group_name == "ledger"}
    assert set(specs) == LEDGER
    assert all(s.description for s in specs.values())
    checks = {(k.asset_key.to_user_string(), k.name) for k in DEFS.resolve_asset_graph().asset_check_keys}
    assert {c for c in checks if c[0] in LEDGER} == {  # the recon checks: tests/test_dagster_recon.py
        ("balance_cache", REPLAY_EQUALS_CACHE), ("balance_operations", UNIQUE_OPERATION_KEYS),
        ("balance_operations", FEE_RULE_PRESENT)}
    ingest_job = DEFS.resolve_job_def("ledger_ingest_job")
    assert {k.to_user_string() for k in ingest_job.asset_layer.selected_asset_keys} == LEDGER - {
        "balance_cache", "balance_snapshot"}
    snapshot_job = DEFS.resolve_job_def("balance_snapshot_job")
    assert {k.to_user_string() for k in snapshot_job.asset_layer.selected_asset_keys} == {
        "balance_cache", "balance_snapshot"}
    DEFS.resolve_job_def("ledger_checks_job")
    DEFS.resolve_job_def("expire_holds_job")
    schedules = {name: DEFS.resolve_schedule_def(name) for name in (
        "balance_snapshot_schedule", "ledger_checks_schedule", "expire_holds_schedule")}
    assert schedules["balance_snapshot_schedule"].cron_schedule == "*/15 * * * *"
    assert schedules["balance_snapshot_schedule"].job_name == "balance_snapshot_job"
    assert all(s.execution_timezone == "UTC" for s in schedules.values())
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in schedules.values())
    assert DEFS.resolve_sensor_def("landing_files_sensor").job_name == "ledger_ingest_job"
    assert DEFS.resolve_sensor_def("run_failure_audit_sensor").default_status == dg.DefaultSensorStatus.RUNNING


def test_ledger_jobs_ingest_landing_files_cache_snapshot_and_check(home):
    landing = home / "landing"
    write_ops(landing / "confirmed" / "co.csv", [op("o1", "100.00"), op("o2", "10.50", type="refund"),
                                                 op("o3", "-1"), op("j1", "1000", merchant="M2")])
    write_ops(landing / "reconciled" / "ro.jsonl", [op("o1", "100.00")])
    with dg.instance_for_test() as instance:
        ingested = metadata(run("ledger_ingest_job", instance))
        snapshot = metadata(run("balance_snapshot_job", instance))
        checks = run("ledger_checks_job", instance).get_asset_check_evaluations()

    assert ingested["confirmed_operations"]["rows_received"] == 4
    assert ingested["confirmed_operations"]["dagster/row_count"] == 4
    assert ingested["reconciled_operations"]["files"] == ["ro.jsonl"]
    log = ingested["balance_operations"]
    # o1 CO capture + fee, o2 refund, j1 capture + fee (JPY 3.5% of 1000 = 35), o1 RO capture + fee
    assert (log["operations_ingested"], log["duplicates"], log["entries_appended"]) == (4, 0, 7)
    assert log["dagster/row_count"] == 7
    assert "| o1 | CO | capture | 100.0000 | EUR | M1 |" in log["preview"]  # sorted: j1, then o1
    quarantine = ingested["ledger_quarantine"]
    assert (quarantine["quarantined"], quarantine["newly_quarantined"], quarantine["open"]) == (1, 1, 1)
    assert "non_positive_amount" in quarantine["preview"]

    assert snapshot["balance_cache"]["dagster/row_count"] == 2
    assert snapshot["balance_snapshot"]["balances"] == 2
    assert "| M1 | EUR | 86.30 | 96.80 | 0.00 | 96.80 |" in snapshot["balance_snapshot"]["preview"]
    assert "| M2 | JPY | 965 | 0 | 0 | 0 |" in snapshot["balance_snapshot"]["preview"]
    assert sorted((c.check_name, c.passed) for c in checks) == [
        (FEE_RULE_PRESENT, True), (REPLAY_EQUALS_CACHE, True), (UNIQUE_OPERATION_KEYS, True)]

    ws = OpsResource(ops_home=str(home))
    with ws.workspace() as w:
        [m1] = balances.get_balances(w, "M1")
        [m2] = balances.get_balances(w, "M2")
    assert (m1.confirmed_minor, m1.settled_minor) == (10000 - 320 - 1050, 10000 - 320)
    assert (m2.confirmed_minor, m2.settled_minor) == (1000 - 35, 0)
    assert not list((landing / "confirmed").iterdir()) and not list((landing / "reconciled").iterdir())
    assert (landing / "archive" / "confirmed" / "co.csv").exists()
    assert (landing / "archive" / "reconciled" / "ro.jsonl").exists()


def test_same_file_again_counts_duplicates_and_keeps_both_archived_copies(home):
    rows = [op("o1", "100.00"), op("o3", "-1")]
    with dg.instance_for_test() as instance:
        write_ops(home / "landing" / "confirmed" / "co.csv", rows)
        run("ledger_ingest_job", instance)
        write_ops(home / "landing" / "confirmed" / "co.csv", rows)
        again = metadata(run("ledger_ingest_job", instance))
    assert (again["balance_operations"]["operations_ingested"], again["balance_operations"]["duplicates"]) == (0, 1)
    assert (again["ledger_quarantine"]["quarantined"], again["ledger_quarantine"]["newly_quarantined"]) == (1, 0)
    assert sorted(p.name for p in (home / "landing" / "archive" / "confirmed").iterdir()) == ["co.1.csv", "co.csv"]


def test_replay_check_fails_with_examples_when_the_cache_drifts(sqlite_ws, tmp_path):
    ingest.ingest_file(sqlite_ws, write_ops(tmp_path / "co.csv", [op("o1", "100.00")]), "confirmed")
    balances.refresh_cache(sqlite_ws)
    with sqlite_ws.engine.begin() as conn:
        conn.execute(update(balance_cache).where(balance_cache.c.merchant_id == "M1")
                     .values(confirmed_minor=balance_cache.c.confirmed_minor + 1))
    ops = OpsResource(ops_home=str(sqlite_ws.home))
    with dg.instance_for_test() as instance:
        result = dg.materialize([*LEDGER_ASSETS, *LEDGER_CHECKS], instance=instance, resources={"ops": ops},
                                selection=dg.AssetSelection.checks(*LEDGER_CHECKS))
    evaluations = {c.check_name: c for c in result.get_asset_check_evaluations()}
    replay = evaluations[REPLAY_EQUALS_CACHE]
    assert not replay.passed and replay.severity == dg.AssetCheckSeverity.ERROR
    assert replay.metadata["count"].value == 1
    [example] = replay.metadata["examples"].value
    assert (example["merchant_id"], example["confirmed_minor"], example["confirmed_minor_cache"]) == (
        "M1", 10000 - 320, 10000 - 320 + 1)
    assert evaluations[UNIQUE_OPERATION_KEYS].passed and evaluations[FEE_RULE_PRESENT].passed


def test_expire_holds_job_expires_due_holds(home, sqlite_ws, tmp_path):
    ingest.ingest_file(sqlite_ws, write_ops(tmp_path / "ro.csv", [op("o1", "100.00")]), "reconciled")
    hold = holds.place_hold(sqlite_ws, "M1", "EUR", 500, actor="test",
                            expires_at=datetime.now(UTC) + timedelta(seconds=0.3))
    time.sleep(0.4)
    with dg.instance_for_test() as instance:
        result = run("expire_holds_job", instance)
    assert result.output_for_node("expire_due_holds") == 1
    assert holds.get_hold(sqlite_ws, hold.hold_id).status == holds.EXPIRED


def test_duckdb_resource_exposes_the_lake_views(sqlite_ws, tmp_path):
    ingest.ingest_file(sqlite_ws, write_ops(tmp_path / "co.csv", [op("o1", "100.00")]), "confirmed")
    duck = LakeDuckDBResource(ops=OpsResource(ops_home=str(sqlite_ws.home)))
    with duck.get_connection() as con:
        rows = con.sql("SELECT type, amount FROM balance_operations ORDER BY type").fetchall()
    assert [(t, str(a)) for t, a in rows] == [("capture", "100.0000"), ("psp_fee", "-3.2000")]


def test_workspace_yaml_loads_the_code_location(home, tmp_path):
    """What `dagster dev` does: load workspace.yaml in a code server, on the repository's instance yaml."""
    dagster_home = tmp_path / "dagster"
    install_instance_yaml(dagster_home)
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "--load-with-grpc",
         "-w", str(REPO / "workspace.yaml")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful for code location ops_pipeline" in done.stdout + done.stderr
    assert Path(dagster_home / "dagster.yaml").read_text() == (REPO / "dagster.yaml").read_text()
