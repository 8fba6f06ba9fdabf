"""Dagster instance storage picked when the instance loads: PostgreSQL if `DAGSTER_PG_*` is set, else SQLite.

A dagster.yaml cannot branch on the environment, so the repository's dagster.yaml names this class as
its `storage: custom:`; one file then serves the embedded default and production unchanged.
- `DAGSTER_PG_URL` (`postgresql://user:password@host:port/db`), or `DAGSTER_PG_HOST` / `DAGSTER_PG_DB`
  with optional `DAGSTER_PG_PORT` (5432), `DAGSTER_PG_USER` (postgres), `DAGSTER_PG_PASSWORD`: PostgreSQL
  through dagster-postgres (tables created on first use).
- otherwise SQLite under `DAGSTER_HOME`, or `OPS_HOME/dagster` when `DAGSTER_HOME` is unset (plain
  `dagster dev` in the repository), so run history outlives the session.
Every Dagster process (webserver, daemon, run workers) inherits the same environment, so all agree.
SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3; URLs are pinned to psycopg2, which we ship.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClass, ConfigurableClassData
from sqlalchemy.engine import URL, make_url

from ops_pipeline.settings import Settings


def postgres_url(env: Mapping[str, str]) -> str | None:
    """The PostgreSQL URL the `DAGSTER_PG_*` variables describe, or None when none is set."""
    if env.get("DAGSTER_PG_URL"):
        url = make_url(env["DAGSTER_PG_URL"])
    elif env.get("DAGSTER_PG_HOST") or env.get("DAGSTER_PG_DB"):
        url = URL.create(
            "postgresql", username=env.get("DAGSTER_PG_USER") or "postgres",
            password=env.get("DAGSTER_PG_PASSWORD") or None, host=env.get("DAGSTER_PG_HOST") or "127.0.0.1",
            port=int(env.get("DAGSTER_PG_PORT") or 5432), database=env.get("DAGSTER_PG_DB") or "dagster",
        )
    else:
        return None
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg2")
    return url.render_as_string(hide_password=False)


def sqlite_dir(env: Mapping[str, str]) -> str:
    return env.get("DAGSTER_HOME") or str(Settings.from_env(env).dagster_home)


class OpsDagsterStorage(DagsterStorage, ConfigurableClass):
    """Never instantiated: `from_config_value` returns the PostgreSQL or the SQLite storage."""

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping
    ) -> DagsterStorage:
        url = postgres_url(os.environ)
        if url:
            from dagster_postgres import DagsterPostgresStorage

            return DagsterPostgresStorage(postgres_url=url, inst_data=inst_data)
        return DagsterSqliteStorage.from_local(sqlite_dir(os.environ), inst_data=inst_data)
