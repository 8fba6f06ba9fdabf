"""Open, create and append Delta tables; serialize writers; expose tables to DuckDB."""

from __future__ import annotations

import gc
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pyarrow.fs as pa_fs
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from deltalake.transaction import AddAction

from ops_pipeline.lake.tables import TABLES, TableSpec
from ops_pipeline.observability import tracing

if TYPE_CHECKING:
    import polars as pl

# Every table keeps a change data feed, so caches can fold in exactly the commits they have not seen.
# A checkpoint every 10 commits (delta-rs: 100): bringing a handle up to date, and so every commit, costs in
# proportion to the commits since the last checkpoint (the live intake's group commit: 73 -> 41 ms).
TABLE_CONFIG = {"delta.enableChangeDataFeed": "true", "delta.checkpointInterval": "10"}
PEEK_COMMITS = 16  # `peek_version` stats at most this many commit files
REMEMBERED = 256  # commits per table and kind that `remember` keeps
SMALL_ROWS = 100_000  # frames staged together up to this many rows go to one file


@dataclass(frozen=True)
class Staged:
    """Rows of table `name` ready to commit: Parquet files already written (local disk) or an Arrow table."""

    name: str
    actions: tuple[AddAction, ...] = ()
    table: pa.Table | None = None


class Lake:
    """The Delta tables under one root URI (a local directory or `s3://bucket/prefix`)."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None):
        self.uri = uri.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self._handles: dict[str, DeltaTable] = {}
        self._ensured: set[str] = set()  # tables known to exist: `ensure` opens nothing for them
        self._s3: pa_fs.S3FileSystem | None = None
        self._derived: dict[tuple[str, str], dict[int, Any]] = {}  # see `remember`

    def close(self) -> None:
        """Drop the cached Delta handles and the S3 client, so none outlives the workspace."""
        self._handles.clear()
        self._s3 = None
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
        elif not self.is_local or os.path.exists(self._next_commit(name, handle.version())):
            handle.update_incremental()  # local disk: only when a newer commit file exists (one stat)
        return handle.version()

    def peek_version(self, name: str) -> int:
        """Latest committed version without reading the new commits: on local disk, stats of the next commit
        files from the kept handle's version (a handle many commits behind is brought up to date instead)."""
        handle = self._handles.get(name)
        if handle is None or not self.is_local:
            return self.latest_version(name)
        version = handle.version()
        for _ in range(PEEK_COMMITS):
            if not os.path.exists(self._next_commit(name, version)):
                return version
            version += 1
        return self.latest_version(name)

    def remember(self, name: str, kind: str, version: int, value: Any) -> None:
        """Keep `value`, something derived from commit `version` of table `name` (immutable, so it never goes
        stale), for `recall`; the last `REMEMBERED` versions of each kind are kept."""
        kept = self._derived.setdefault((name, kind), {})
        kept[version] = value
        while len(kept) > REMEMBERED:
            del kept[min(kept)]

    def forget(self, name: str, kind: str, version: int) -> None:
        self._derived.get((name, kind), {}).pop(version, None)

    def recall(self, name: str, kind: str, version: int) -> Any:
        """What `remember` kept for this commit, or None."""
        return self._derived.get((name, kind), {}).get(version)

    def _next_commit(self, name: str, version: int) -> str:
        root = self.table_uri(name).removeprefix("file://")
        return f"{root}/_delta_log/{version + 1:020d}.json"

    def ensure(self, spec: TableSpec) -> None:
        """Create the table empty with its schema if it does not exist, or give an existing one the properties
        of TABLE_CONFIG it lacks (idempotent)."""
        if spec.name in self._ensured:
            return
        table = self.open(spec.name)
        with suppress(CommitFailedError):  # another process created or altered it first
            if table is None:
                write_deltalake(
                    self.table_uri(spec.name),
                    spec.schema.empty_table(),
                    mode="append",
                    partition_by=list(spec.partition_by) or None,
                    configuration=TABLE_CONFIG,
                    storage_options=self.storage_options,
                )
            elif missing := {k: v for k, v in TABLE_CONFIG.items()
                             if table.metadata().configuration.get(k) != v}:
                table.alter.set_table_properties(missing)
        self._ensured.add(spec.name)

    def append(self, name: str, data: pa.Table, attempts: int = 5) -> int:
        """Append in one commit (all rows or none) and return the version of that commit.

        Concurrent writers are safe: delta-rs commits with put-if-absent (`conditional_put=etag` on S3)
        and rebases a blind append onto commits that won the race; a conflict left over is retried here.
        """
        for attempt in range(attempts - 1):
            try:
                return self._write(name, data, "append")
            except CommitFailedError:
                time.sleep(0.05 * 2**attempt)
        return self._write(name, data, "append")

    def stage(self, name: str, frames: list[pl.DataFrame]) -> Staged:
        """Write polars frames as Parquet files of table `name` (lz4), one file per frame, in parallel (frames
        of `SMALL_ROWS` rows in all go to one file: a log of many small commits holds fewer files).

        Nothing is visible until `commit`: a crash in between leaves only files no version refers to.
        Polars writes the strings itself (no Arrow conversion). Object storage keeps the Arrow path.
        """
        spec = TABLES[name]
        import polars as pl  # here: readers of the lake (`ops-pipeline sql`) never need it

        schema = pl.from_arrow(spec.schema.empty_table()).schema
        frames = [f.select(spec.schema.names).cast(schema) for f in frames if len(f)]
        if not self.is_local:
            return Staged(name, table=pl.concat(frames).to_arrow() if frames else None)
        self.ensure(spec)
        root = self.table_uri(name).removeprefix("file://")
        if len(frames) > 1 and sum(len(f) for f in frames) <= SMALL_ROWS:
            frames = [pl.concat(frames)]  # one small file, not several tiny ones
        if len(frames) <= 1:
            return Staged(name, tuple(_write_file(root, f) for f in frames))
        with ThreadPoolExecutor(len(frames)) as pool:
            return Staged(name, tuple(pool.map(lambda f: _write_file(root, f), frames)))

    def commit(self, staged: Staged, table: DeltaTable | None = None, attempts: int = 5) -> int:
        """Commit staged rows as one new version (all or nothing) and return it; `table` is a handle of the
        table to commit through (a long-lived writer's, kept up to date), else one is opened.

        The returned version is the table's latest after the commit: callers serialize writers of the table
        (the ledger lock), as the cache's compare-and-set on versions needs anyway.
        """
        if staged.table is not None:
            return self.append(staged.name, staged.table, attempts)
        table = table or self.open(staged.name)
        if not staged.actions:
            return table.version()
        for attempt in range(attempts):
            try:
                with tracing.span("delta.commit", {"delta.table": staged.name, "delta.mode": "append"}), \
                        delta_commit(staged.name):
                    table.create_write_transaction(list(staged.actions), mode="append",
                                                   schema=TABLES[staged.name].schema)
                table.update_incremental()  # our commit is the latest: writers of a table hold its lock
                return table.version()
            except CommitFailedError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * 2**attempt)
                table.update_incremental()

    def overwrite(self, name: str, data: pa.Table) -> int:
        return self._write(name, data, "overwrite")

    def _write(self, name: str, data: pa.Table, mode: str) -> int:
        spec = TABLES[name]
        data = data.select(spec.schema.names).cast(spec.schema)
        attributes = {"delta.table": name, "delta.mode": mode, "delta.rows": data.num_rows}
        with tracing.span("delta.commit", attributes), delta_commit(name):
            table = self.open(name)
            if table is None:
                write_deltalake(self.table_uri(name), data, mode=mode, configuration=TABLE_CONFIG,
                                partition_by=list(spec.partition_by) or None,
                                storage_options=self.storage_options)
                return self.open(name).version()
            # an overwrite may bring columns added to the spec since the table was created (nullable ones)
            write_deltalake(table, data, mode=mode, schema_mode="merge" if mode == "overwrite" else None)
            return table.version()  # the handle now stands at our own commit, not at a later one

    def changes(self, name: str, after_version: int, upto_version: int, columns: list[str]) -> pa.Table:
        """Rows inserted by the commits in (after_version, upto_version]."""
        table = self.open(name)
        if table is None or upto_version <= after_version:
            return TABLES[name].schema.empty_table().select(columns)
        reader = table.load_cdf(
            starting_version=after_version + 1, ending_version=upto_version, columns=columns
        )
        return pa.table(reader.read_all()).select(columns)

    @contextmanager
    def connect(self, *names: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB connection (UTC) with tables `names` registered as `lake_<name>`, closed after use."""
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            for name in names:
                self.relation(con, name)
            yield con
        finally:
            con.close()

    def relation(self, con: duckdb.DuckDBPyConnection, name: str, version: int | None = None) -> str:
        """Register table `name` in `con` as `lake_<name>` and return that name.

        Local tables are read straight from their Parquet files (fast, valid for these append-only
        tables); object storage goes through an Arrow dataset of the table's files.
        """
        view = f"lake_{name}"
        spec = TABLES[name]
        table = self.open(name, version)
        if table is None or not (files := table.file_uris()):
            con.register(view, spec.schema.empty_table())
        elif self.is_local:
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM read_parquet({_sql_list(files)})"
            )
        else:
            con.register(view, table.to_pyarrow_dataset(filesystem=self._arrow_filesystem(name)))
        return view

    def _arrow_filesystem(self, name: str) -> pa_fs.FileSystem | None:
        """pyarrow's native S3 client rooted at table `name`; None (the Delta reader's own) for other stores.

        The Delta reader's filesystem calls back into Python from Arrow's I/O threads: a DuckDB scan
        stopped early (LIMIT, an error) leaves such reads queued, and they crash the interpreter at exit.
        """
        url = urlsplit(self.table_uri(name))
        if url.scheme not in ("s3", "s3a"):
            return None
        if self._s3 is None:
            self._s3 = _s3_filesystem(self.storage_options)
        return pa_fs.SubTreeFileSystem(f"{url.netloc}{url.path}", self._s3)


def delta_commit(table: str):
    """Times a write (metrics), imported on the first write: readers (`ops-pipeline sql`) skip it."""
    from ops_pipeline.observability.timing import delta_commit as timed

    return timed(table)


def _s3_filesystem(options: dict[str, str]) -> pa_fs.S3FileSystem:
    """The same endpoint, region and credentials as the Delta storage options (default chain if absent)."""
    option = {k.upper(): v for k, v in options.items()}.get
    endpoint = urlsplit(option("AWS_ENDPOINT_URL", ""))
    return pa_fs.S3FileSystem(
        access_key=option("AWS_ACCESS_KEY_ID"),
        secret_key=option("AWS_SECRET_ACCESS_KEY"),
        session_token=option("AWS_SESSION_TOKEN"),
        region=option("AWS_REGION"),
        endpoint_override=endpoint.netloc or None,
        scheme=endpoint.scheme or "https",
    )


def _write_file(root: str, frame: pl.DataFrame) -> AddAction:
    """One Parquet file in the table directory, and the action that adds it."""
    name = f"part-00000-{uuid.uuid4()}-c000.lz4.parquet"
    path = os.path.join(root, name)
    frame.write_parquet(path, compression="lz4")
    stat = os.stat(path)
    return AddAction(path=name, size=stat.st_size, partition_values={},
                     modification_time=int(stat.st_mtime * 1000), data_change=True,
                     stats=json.dumps({"numRecords": len(frame)}))


def _sql_list(items: Iterable[str]) -> str:
    return "[" + ", ".join("'" + i.replace("'", "''") + "'" for i in items) + "]"
