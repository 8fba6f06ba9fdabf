"""The code location's shape: one `defs` per domain merged; the resource initialises once; "Materialize
all" computes every asset and evaluates every check even when no file waits."""

import sqlite3
import threading

import dagster as dg
import pytest

import definitions
from ops_pipeline.ledger import ingest
from resources import ops as ops_module
from resources.ops import OpsResource
from tests.factories import op, write_ops

LEDGER_TABLES = {"confirmed_operations", "reconciled_operations", "balance_operations", "ledger_quarantine",
                 "balance_cache", "balance_snapshot"}


def test_each_domain_declares_its_own_objects_and_the_location_merges_them():
    names = {}
    for domain in definitions.DOMAINS:
        d = domain.defs
        for obj in [*(d.jobs or []), *(d.schedules or []), *(d.sensors or [])]:
            assert obj.name not in names, f"{obj.name} declared by {names.get(obj.name)} and {domain.__name__}"
            names[obj.name] = domain.__name__
    merged = definitions.defs
    assert {j.name for j in merged.resolve_all_job_defs()} - {"__ASSET_JOB"} == {
        n for n, dom in names.items() if n.endswith("_job")}
    assert names["landing_files_sensor"] == "assets.ledger.defs"
    assert names["fundout_hourly_schedule"] == "assets.fundout.defs"
    assert names["job_tickets_sensor"] == "assets.tickets.defs"
    assert names["run_failure_audit_sensor"] == "assets.platform.defs"


@pytest.fixture
def home(sqlite_ws, monkeypatch):
    monkeypatch.setenv("OPS_HOME", str(sqlite_ws.home))
    for name in ("OPS_DATABASE_URL", "OPS_LAKE_URI", "OPS_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    return sqlite_ws


def test_materialize_all_with_no_landing_file_computes_every_asset_and_evaluates_every_check(home, tmp_path):
    ingest.ingest_file(home, write_ops(tmp_path / "co.csv", [op("o1", "100.00"), op("o2", "-1")]), "confirmed")
    job = definitions.defs.resolve_implicit_global_asset_job_def()  # what the UI's "Materialize all" runs
    graph = definitions.defs.resolve_asset_graph()  # partitioned assets (reports) run per partition, not here
    unpartitioned = [k for k in graph.materializable_asset_keys if not graph.get(k).partitions_def]
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, asset_selection=unpartitioned)
    assert result.success
    events = {e.materialization.asset_key.to_user_string(): e.materialization.metadata
              for e in result.get_asset_materialization_events()}
    assert set(events) == LEDGER_TABLES
    assert events["confirmed_operations"]["dagster/row_count"].value == 2  # true counts, not a no-op
    assert events["balance_operations"]["dagster/row_count"].value == 2  # capture + fee
    assert events["ledger_quarantine"]["open"].value == 1
    assert events["balance_snapshot"]["balances"].value == 1
    checks = result.get_asset_check_evaluations()
    assert sorted((c.check_name, c.passed) for c in checks) == [
        ("fee_rule_present", True), ("replay_equals_cache", True), ("unique_operation_keys", True)]
    skipped = [e for e in result.all_events if e.event_type_value == "STEP_SKIPPED"]
    assert skipped == []


def test_resource_keeps_one_engine_and_never_takes_the_sqlite_write_lock_to_find_nothing_to_do(home):
    ops = OpsResource(ops_home=str(home.home))
    with ops.workspace() as first:
        engine = first.engine
    # Another writer holds SQLite's write lock: a migration or `lake.ensure` would now wait for it.
    db = sqlite3.connect(home.settings.database_url.removeprefix("sqlite:///"), timeout=0.1)
    db.isolation_level = None
    db.execute("BEGIN IMMEDIATE")
    try:
        done = threading.Event()

        def tick():
            with ops.workspace() as ws:
                assert ws.engine is engine
                with ws.read_engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
            done.set()

        threading.Thread(target=tick, daemon=True).start()
        assert done.wait(5), "a second use of the resource waited for the write lock"
    finally:
        db.execute("ROLLBACK")
        db.close()


def test_a_new_workspace_is_initialised_on_first_use_only(tmp_path, monkeypatch):
    calls = []
    real = ops_module.Workspace.init
    monkeypatch.setattr(ops_module.Workspace, "init", lambda self: calls.append(1) or real(self))
    ops = OpsResource(ops_home=str(tmp_path / "fresh"))
    for _ in range(3):
        with ops.workspace() as ws:
            assert ws.is_ready()
    assert calls == [1]
