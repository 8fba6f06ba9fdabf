"""The ops-pipeline workspace as a Dagster resource: the same settings as the CLI and the API."""

import atexit
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field
from sqlalchemy import Engine

from ops_pipeline.observability import logs
from ops_pipeline.settings import Settings
from ops_pipeline.workspace import Workspace

# One engine per workspace for the life of the process (code server, run worker), its schema checked once:
# ops, checks and sensor ticks neither migrate nor take SQLite's write lock to find nothing to do. A few
# workspaces at most are kept (tests make many); the least recently used one is disposed.
_ENGINES: OrderedDict[tuple[str, str], Engine] = OrderedDict()
_KEEP = 4
_LOCK = threading.Lock()


def _engine(settings: Settings) -> Engine:
    key = (settings.database_url, settings.lake_uri)
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is not None:
            _ENGINES.move_to_end(key)
        else:
            logs.configure(root=False)  # ops-pipeline's log lines on this process's stderr, in our format
            ws = Workspace(settings)
            try:
                ws.ensure_ready()
            finally:
                ws.lake.close()
            engine = _ENGINES[key] = ws.engine
            while len(_ENGINES) > _KEEP:
                _ENGINES.popitem(last=False)[1].dispose()
    return engine


@atexit.register
def _dispose() -> None:
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


class OpsResource(dg.ConfigurableResource):
    """The workspace from the environment (ARCHITECTURE section 2); set fields override it, e.g. in tests."""

    ops_home: str | None = Field(default=None, description="Overrides OPS_HOME.")
    database_url: str | None = Field(default=None, description="Overrides OPS_DATABASE_URL.")
    lake_uri: str | None = Field(default=None, description="Overrides OPS_LAKE_URI.")

    def settings(self) -> Settings:
        overrides = {"OPS_HOME": self.ops_home, "OPS_DATABASE_URL": self.database_url,
                     "OPS_LAKE_URI": self.lake_uri}
        return Settings.from_env({**os.environ, **{k: v for k, v in overrides.items() if v}})

    def console_link(self, path: str) -> dg.MetadataValue:
        """A link into the ops console (OPS_CONSOLE_URL), shown with a run's or an asset's metadata."""
        return dg.MetadataValue.url(f"{self.settings().console_url}{path}")

    @contextmanager
    def workspace(self) -> Iterator[Workspace]:
        """The workspace on the process's engine (initialized on first use if it was not); its Delta handles
        are dropped after use (an S3 handle alive at exit aborts the process)."""
        settings = self.settings()
        ws = Workspace(settings, engine=_engine(settings))
        try:
            yield ws
        finally:
            ws.close()
