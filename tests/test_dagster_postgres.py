"""The repository's dagster.yaml: a real Dagster instance on PostgreSQL (dagster-postgres) when `DAGSTER_PG_*`
is set, SQLite under DAGSTER_HOME otherwise. Fails, never skips, when PostgreSQL is unreachable."""

import uuid

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.runs import SqliteRunStorage
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from assets.ledger.assets import BALANCE_SNAPSHOT, LEDGER_ASSETS
from ops_pipeline.cli.dev import REPO
from ops_pipeline.ledger import balances, merchants
from resources.ops import OpsResource
from tests.conftest import PG_ADMIN_URL
from tests.factories import op, write_merchants, write_ops

PG_ENV = ("DAGSTER_PG_URL", "DAGSTER_PG_HOST", "DAGSTER_PG_DB", "DAGSTER_PG_PORT", "DAGSTER_PG_USER",
          "DAGSTER_PG_PASSWORD")


@pytest.fixture
def dagster_db(monkeypatch):
    """A fresh PostgreSQL database for the Dagster instance, dropped afterwards; no DAGSTER_PG_* inherited."""
    for name in PG_ENV:
        monkeypatch.delenv(name, raising=False)
    name = f"ops_dagster_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable server is a failure, not a skip
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {exc}")
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def repo_instance(dagster_home) -> dg.DagsterInstance:
    """The instance `dagster dev` builds from the repository's dagster.yaml."""
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home), config_dir=str(REPO)))


def test_real_instance_on_postgres_materializes_the_ledger(dagster_db, pg_url, tmp_path, monkeypatch):
    admin = make_url(PG_ADMIN_URL)
    # a bare postgresql:// URL, as users write it (SQLAlchemy 2.1 would pick psycopg 3 for it)
    url = f"postgresql://{admin.username}@{admin.host}:{admin.port}/{dagster_db}"
    monkeypatch.setenv("DAGSTER_PG_URL", url)
    ops = OpsResource(ops_home=str(tmp_path / "home"), database_url=pg_url)
    with ops.workspace() as ws:
        merchants.load(ws, write_merchants(tmp_path / "merchants.csv"))
    write_ops(ops.settings().landing_dir / "confirmed" / "co.csv", [op("o1", "100.00")])

    with repo_instance(tmp_path / "dagster") as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        result = dg.materialize(LEDGER_ASSETS, instance=instance, resources={"ops": ops})
        assert result.success
        latest = instance.get_latest_materialization_event(BALANCE_SNAPSHOT)
        assert latest.asset_materialization.metadata["balances"].value == 1

    engine = create_engine(admin.set(database=dagster_db))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM runs WHERE status = 'SUCCESS'")).scalar_one() == 1
        materialized = conn.execute(text(
            "SELECT asset_key FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' ORDER BY id"
        )).scalars().all()
    engine.dispose()
    # every table materializes, the feed that received no file too (with its row count as it stands)
    assert set(materialized) == {'["confirmed_operations"]', '["reconciled_operations"]', '["balance_operations"]',
                                 '["ledger_quarantine"]', '["balance_cache"]', '["balance_snapshot"]'}
    with ops.workspace() as ws:
        [m1] = balances.get_balances(ws, "M1")
    assert m1.confirmed_minor == 10000 - 320


def test_repo_yaml_picks_postgres_from_host_and_db_else_sqlite(dagster_db, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_PG_HOST", make_url(PG_ADMIN_URL).host)
    monkeypatch.setenv("DAGSTER_PG_DB", dagster_db)
    with repo_instance(tmp_path / "pg") as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 2

    monkeypatch.delenv("DAGSTER_PG_HOST")
    monkeypatch.delenv("DAGSTER_PG_DB")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    with repo_instance(tmp_path / "dagster_home") as instance:
        assert isinstance(instance.run_storage, SqliteRunStorage)
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 2
    assert (tmp_path / "dagster_home" / "history" / "runs.db").exists()

    # plain `dagster dev` without DAGSTER_HOME: run history still goes to OPS_HOME/dagster
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.setenv("OPS_HOME", str(tmp_path / "ops"))
    with repo_instance(tmp_path / "session") as instance:
        assert isinstance(instance.run_storage, SqliteRunStorage)
    assert (tmp_path / "ops" / "dagster" / "history" / "runs.db").exists()
