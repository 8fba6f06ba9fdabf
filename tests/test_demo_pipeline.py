"""The demo's Dagster chapter records every ledger asset and check in the workspace's own instance, which
is what the Dagster UI of `make dev` opens on."""

import dagster as dg

from ops_pipeline.demo.pipeline import run_pipeline
from ops_pipeline.ledger import ingest
from tests.factories import op, write_ops

ASSETS = ["confirmed_operations", "reconciled_operations", "balance_operations", "ledger_quarantine",
          "balance_cache", "balance_snapshot"]


def test_the_ui_instance_shows_every_asset_materialized_and_every_check_evaluated(sqlite_ws, tmp_path, monkeypatch):
    ingest.ingest_file(sqlite_ws, write_ops(tmp_path / "co.csv", [op("o1", "100.00")]), "confirmed")
    write_ops(sqlite_ws.settings.landing_dir / "reconciled" / "ro.csv", [op("o1", "100.00")])
    lines = []
    run_pipeline(sqlite_ws, lines.append)
    assert "6 assets materialized" in lines[0]
    assert "landing files ingested: 1 operations" in lines[1]
    assert lines[-1] == ("  checks: fee_rule_present passed, replay_equals_cache passed, "
                         "unique_operation_keys passed")
    dagster_home = str(sqlite_ws.settings.dagster_home.resolve())
    monkeypatch.setenv("DAGSTER_HOME", dagster_home)  # as `make dev` sets it for the UI
    with dg.DagsterInstance.from_config(dagster_home) as instance:
        for name in ASSETS:
            event = instance.get_latest_materialization_event(dg.AssetKey(name))
            assert event is not None, name
            assert event.asset_materialization.metadata, name
        checks = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("balance_cache"), "replay_equals_cache"), limit=5)
    assert [c.status.value for c in checks] == ["SUCCEEDED"]
    assert not list((sqlite_ws.settings.landing_dir / "reconciled").iterdir())  # ingested and archived
