"""Shared fixtures: a workspace on SQLite and on a private PostgreSQL schema, sample files.

PostgreSQL tests fail (never skip) when the server on 127.0.0.1:5432 is unreachable.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

# Metrics of this test process go to a directory of its own (set before anything imports the catalogue);
# servers started by tests get their workspace's directory from their environment.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ops-test-metrics-")

import pytest
from sqlalchemy import create_engine, text

from ops_pipeline.settings import Settings
from ops_pipeline.workspace import Workspace
from tests.factories import write_merchants

PG_ADMIN_URL = os.environ.get("OPS_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_schemas():
    """Makes fresh PostgreSQL schemas (a URL with search_path pinned to one); all dropped afterwards."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    made = []

    def make() -> str:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        except Exception as exc:  # unreachable server is a failure, not a skip
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {exc}")
        made.append(schema)
        return f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"

    yield make
    with admin.connect() as conn:
        for schema in made:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sim():
    """The partner and bank simulator, in memory."""
    from ops_pipeline.partners.simulator import Simulator

    return Simulator()


@pytest.fixture
def sim_url(sim):
    """`sim` served over real HTTP on 127.0.0.1; its base URL."""
    from ops_pipeline.partners.app import serving

    with serving(sim) as url:
        yield url


@pytest.fixture
def pg_url(pg_schemas):
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    return pg_schemas()


def make_settings(home: Path, database_url: str | None = None, **env: str) -> Settings:
    values = {"OPS_HOME": str(home), **env}
    if database_url:
        values["OPS_DATABASE_URL"] = database_url
    return Settings.from_env(values)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """Each test using this runs twice: embedded SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def ws(tmp_path, db_url):
    """An initialized workspace (DB schema + empty lake tables) with the sample merchant context loaded."""
    from ops_pipeline.ledger import merchants

    workspace = Workspace(make_settings(tmp_path / "home", db_url))
    workspace.init()
    merchants.load(workspace, write_merchants(tmp_path / "merchants.csv"))
    yield workspace
    workspace.close()


@pytest.fixture
def bank_ws(tmp_path, db_url, sim_url):
    """An initialized workspace (no merchant context) whose bank is the simulator over HTTP (`sim`)."""
    workspace = Workspace(make_settings(tmp_path / "home", db_url, OPS_BANK_URL=sim_url))
    workspace.init()
    yield workspace
    workspace.close()


@pytest.fixture
def sqlite_ws(tmp_path):
    """Like `ws`, on the embedded default only (for tests about files and processes, not SQL dialects)."""
    from ops_pipeline.ledger import merchants

    workspace = Workspace(make_settings(tmp_path / "home"))
    workspace.init()
    merchants.load(workspace, write_merchants(tmp_path / "merchants.csv"))
    yield workspace
    workspace.close()
