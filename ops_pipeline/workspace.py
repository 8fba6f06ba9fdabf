"""A workspace ties the settings to their operational database and lake; every entry point builds one."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine, insert, select

from ops_pipeline.db import is_current, make_engine, upgrade
from ops_pipeline.db.schema import balance_cache_state
from ops_pipeline.lake import TABLES, Lake
from ops_pipeline.locks import writer_lock
from ops_pipeline.settings import Settings, private_dir


class Workspace:
    def __init__(self, settings: Settings, engine: Engine | None = None):
        """`engine`: share a longer-lived engine (it is then not disposed on `close`)."""
        self.settings = settings
        self.lake = Lake(settings.lake_uri, dict(settings.lake_storage_options))
        self._owns_engine = engine is None
        if engine is not None:
            self.__dict__["engine"] = engine

    @classmethod
    def from_env(cls) -> Workspace:
        return cls(Settings.from_env())

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def read_engine(self) -> Engine:
        """The same pool for reads only: on SQLite they do not take the write lock."""
        return self.engine.execution_options(read_only=True)

    @property
    def home(self) -> Path:
        return self.settings.home

    def init(self) -> None:
        """Create or upgrade the DB schema, the lake tables and the workspace folders (idempotent)."""
        private_dir(self.home)
        for kind in ("confirmed", "reconciled", "statements"):
            private_dir(self.settings.landing_dir / kind)
        upgrade(self.engine)
        with self.engine.begin() as conn:
            applied = conn.execute(select(balance_cache_state.c.applied_version)).scalar_one_or_none()
            if applied is None:
                conn.execute(
                    insert(balance_cache_state).values(id=1, applied_version=-1, updated_at=datetime.now(UTC))
                )
        for spec in TABLES.values():
            self.lake.ensure(spec)
        if applied is not None and applied < 0:  # a cache a migration emptied (0016): fold the log again now
            from ops_pipeline.ledger.balances import refresh_cache  # here: the ledger imports this module

            refresh_cache(self)

    def is_ready(self) -> bool:
        """Whether `init` has nothing to do: schema at the newest migration and every lake table present.
        Reads only, so checking never takes SQLite's write lock."""
        return (self.home.is_dir() and is_current(self.engine)
                and all(self.lake.open(spec.name) is not None for spec in TABLES.values()))

    def ensure_ready(self) -> None:
        """`init` only where something is missing (a new workspace, or code newer than its schema)."""
        if not self.is_ready():
            self.init()

    def lock(self, name: str) -> AbstractContextManager[None]:
        """Exclusive writer lock, e.g. `ledger` around check-then-append of the transaction log."""
        return writer_lock(self.engine, name, self.home / "locks")

    def close(self) -> None:
        """Drop pooled connections and Delta handles (an S3 handle alive at exit aborts the process)."""
        self.lake.close()
        if self._owns_engine and "engine" in self.__dict__:
            self.engine.dispose()
