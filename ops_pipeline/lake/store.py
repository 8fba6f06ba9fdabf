"""Open, create and append Delta tables; serialize writers; expose tables to DuckDB."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from ops_pipeline.lake.tables import TABLES, TableSpec

# Every table keeps a change data feed, so caches can fold in exactly the commits they have not seen.
TABLE_CONFIG = {"delta.enableChangeDataFeed": "true"}


class Lake:
    """The Delta tables under one root URI (a local directory or `s3://bucket/prefix`)."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None):
        self.uri = uri.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self._handles: dict[str, DeltaTable] = {}

    def close(self) -> None:
        self._handles.clear()
        gc.collect()

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri or self.uri.startswith("file://")

    def table_uri(self, name: str) -> str:
        return f"{self.uri}/{TABLES[name].path}"

    def open(self, name: str, version: int | None = None) -> DeltaTable | None:
        """The table at its latest (or a given) version, or None if it was never written."""
        try:
            return DeltaTable(self.table_uri(name), version=version, storage_options=self.storage_options)
        except TableNotFoundError:
            return None

    def latest_version(self, name: str) -> int:
        """Latest committed version, -1 for a missing table; reuses one handle and reads only new commits."""
        handle = self._handles.get(name)
        if handle is None:
            handle = self.open(name)
            if handle is None:
                return -1
            self._handles[name] = handle
        else:
            handle.update_incremental()
        return handle.version()

    def ensure(self, spec: TableSpec) -> None:
        """Create the table empty with its schema if it does not exist (idempotent)."""
        if self.open(spec.name) is None:
            try:
                write_deltalake(
                    self.table_uri(spec.name),
                    spec.schema.empty_table(),
                    mode="append",
                    configuration=TABLE_CONFIG,
                    storage_options=self.storage_options,
                )
            except CommitFailedError:
                pass  # another process created it first

    def append(self, name: str, data: pa.Table, attempts: int = 5) -> int:
        """Append in one commit (all rows or none); retries on a concurrent-commit conflict."""
        spec = TABLES[name]
        data = data.select(spec.schema.names).cast(spec.schema)
        for attempt in range(attempts):
            try:
                write_deltalake(
                    self.table_uri(name),
                    data,
                    mode="append",
                    configuration=TABLE_CONFIG,
                    storage_options=self.storage_options,
                )
                break
            except CommitFailedError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * 2**attempt)
        return self.open(name).version()

    def overwrite(self, name: str, data: pa.Table) -> int:
        spec = TABLES[name]
        write_deltalake(
            self.table_uri(name),
            data.select(spec.schema.names).cast(spec.schema),
            mode="overwrite",
            configuration=TABLE_CONFIG,
            storage_options=self.storage_options,
        )
        return self.open(name).version()

    def changes(self, name: str, after_version: int, upto_version: int, columns: list[str]) -> pa.Table:
        """Rows inserted by the commits in (after_version, upto_version]."""
        table = self.open(name)
        if table is None or upto_version <= after_version:
            return TABLES[name].schema.empty_table().select(columns)
        reader = table.load_cdf(
            starting_version=after_version + 1, ending_version=upto_version, columns=columns
        )
        return pa.table(reader.read_all()).select(columns)

    def relation(self, con: duckdb.DuckDBPyConnection, name: str, version: int | None = None) -> str:
        """Register table `name` in `con` as `lake_<name>` and return that name.

        Local tables are read straight from their Parquet files (fast, valid for these append-only
        tables); object storage goes through the Delta reader's Arrow dataset.
        """
        view = f"lake_{name}"
        spec = TABLES[name]
        table = self.open(name, version)
        if table is None or not (files := table.file_uris()):
            con.register(view, spec.schema.empty_table())
        elif self.is_local:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM read_parquet({_sql_list(files)})")
        else:
            con.register(view, table.to_pyarrow_dataset())
        return view


def _sql_list(items: Iterable[str]) -> str:
    return "[" + ", ".join("'" + i.replace("'", "''") + "'" for i in items) + "]"
