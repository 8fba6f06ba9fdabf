"""DuckDB for analysts' assets: the lake tables and views of `ops-pipeline sql` on every connection."""

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dagster_duckdb import DuckDBResource

from ops_pipeline import analytics
from resources.ops import OpsResource


class LakeDuckDBResource(DuckDBResource):
    """`DuckDBResource` (in memory by default) whose connections carry the lake views."""

    ops: OpsResource
    database: str = ":memory:"

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.ops.workspace() as ws, super().get_connection() as con:
            yield analytics.connect(ws, con, operational=True)
