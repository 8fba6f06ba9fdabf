"""The ops-pipeline workspace as a Dagster resource: the same settings as the CLI and the API."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from ops_pipeline.settings import Settings
from ops_pipeline.workspace import Workspace


class OpsResource(dg.ConfigurableResource):
    """The workspace from the environment (ARCHITECTURE section 2); set fields override it, e.g. in tests."""

    ops_home: str | None = Field(default=None, description="Overrides OPS_HOME.")
    database_url: str | None = Field(default=None, description="Overrides OPS_DATABASE_URL.")
    lake_uri: str | None = Field(default=None, description="Overrides OPS_LAKE_URI.")

    def settings(self) -> Settings:
        overrides = {"OPS_HOME": self.ops_home, "OPS_DATABASE_URL": self.database_url,
                     "OPS_LAKE_URI": self.lake_uri}
        return Settings.from_env({**os.environ, **{k: v for k, v in overrides.items() if v}})

    @contextmanager
    def workspace(self) -> Iterator[Workspace]:
        """An initialized workspace (schema and lake tables up to date), closed after use."""
        ws = Workspace(self.settings())
        try:
            ws.init()
            yield ws
        finally:
            ws.close()
