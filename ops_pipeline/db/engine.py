"""Engines for SQLite (embedded) and PostgreSQL, and schema upgrades through Alembic."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ops_pipeline.observability import tracing
from ops_pipeline.settings import private_file

if TYPE_CHECKING:
    from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL, a busy timeout and write-locking transactions (BEGIN IMMEDIATE), except
    on connections with the execution option `read_only` (see `Workspace.read_engine`). A new SQLite file
    is created 0600 (SQLite gives its -wal and -shm files the same mode)."""
    from sqlalchemy import create_engine, event  # imported here: `ops-pipeline --help` and `sql` skip it
    from sqlalchemy.engine import make_url

    from ops_pipeline.observability.timing import instrument_engine, timed_pool_class

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                               poolclass=timed_pool_class())
        instrument_engine(engine)
        return tracing.instrument_engine(engine)
    if parsed.database and parsed.database != ":memory:":
        private_file(Path(parsed.database))
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take the write lock up front; readers (read_only) use a plain snapshot and never wait.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("read_only") else "BEGIN IMMEDIATE")

    instrument_engine(engine)
    return tracing.instrument_engine(engine)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def head_revisions() -> set[str]:
    """The newest migrations, read from the files' `revision` / `down_revision` lines (no Alembic import:
    commands that only read start faster)."""
    found, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text()
        found.update(re.findall(r'^revision\s*=\s*"([^"]+)"', text, re.M))
        parents.update(re.findall(r'^down_revision\s*=\s*"([^"]+)"', text, re.M))
    return found - parents


def is_current(engine: Engine) -> bool:
    """Whether the schema is at the newest migration (one read; no lock taken)."""
    from sqlalchemy import inspect

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return False
        current = {v for (v,) in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}
    return current == head_revisions()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema; idempotent."""
    from alembic import command  # imported here: alembic is slow to import and only `init` needs it
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
