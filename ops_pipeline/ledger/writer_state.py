"""What an ingest looks up before it writes: the merchant context, log keys already taken in, file contents
already recorded, and the Delta handles it commits through.

`Cold` reads them afresh for one ingest (files, the CLI, Dagster). `Warm` keeps them across the commits of a
long-lived writer (the API's intake committer thread, its only user): Delta handles updated incrementally,
one DuckDB connection, and in-memory indexes of int64 keys loaded once and brought up to date, under the
ledger lock, with the files of commits it did not make itself (other processes). The indexes are filters:
a key they hold may be absent from the table (then the exact check reads the table), a key they lack is
absent, so a miss skips the scan and a hit costs what `Cold` always costs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from hashlib import md5
from types import SimpleNamespace

import duckdb
import polars as pl
from deltalake import DeltaTable

from ops_pipeline.lake.store import Lake, Staged
from ops_pipeline.lake.tables import BALANCE_OPERATIONS, LEDGER_QUARANTINE, MERCHANT_CONTEXT
from ops_pipeline.ledger import merchants
from ops_pipeline.workspace import Workspace

LOG = BALANCE_OPERATIONS.name
# op_key = (md5_number_lower(source || ':' || falcon_operation_id) >> 1)::BIGINT, the log's 63-bit key.
# md5_number_lower reads bytes 8..15 of the digest little-endian: byte-swapping the big-endian hex of those
# bytes gives the same number at half the cost.
_MASKS = ("71777214294589695::UBIGINT", "281470681808895::UBIGINT", "4294967295::UBIGINT")
MACROS = (
    f"CREATE MACRO swap8(x) AS ((x & {_MASKS[0]}) << 8) | ((x >> 8) & {_MASKS[0]})",
    f"CREATE MACRO swap16(x) AS ((x & {_MASKS[1]}) << 16) | ((x >> 16) & {_MASKS[1]})",
    f"CREATE MACRO swap32(x) AS ((x & {_MASKS[2]}) << 32) | (x >> 32)",
    "CREATE MACRO op_key(source, id) AS "
    "(swap32(swap16(swap8(('0x' || substr(md5(source || ':' || id), 17, 16))::UBIGINT))) >> 1)::BIGINT",
)


PYTHON_KEYS = 2_000  # op_keys of at most this many ids are hashed in Python (a DuckDB query costs ~2 ms)


def op_keys(con: duckdb.DuckDBPyConnection, source: str, ids: pl.DataFrame) -> pl.DataFrame:
    """`op_key` (the macro's value) of each `falcon_operation_id` of `ids`, in order."""
    if len(ids) <= PYTHON_KEYS:
        keys = [None if i is None else int.from_bytes(md5(f"{source}:{i}".encode()).digest()[8:], "little")
                >> 1 for i in ids["falcon_operation_id"].to_list()]
        return pl.DataFrame({"op_key": keys}, schema={"op_key": pl.Int64})
    con.register("batch_text", ids.to_arrow(compat_level=pl.CompatLevel.newest()))
    return con.sql("SELECT op_key($source, falcon_operation_id) AS op_key FROM batch_text",
                   params={"source": source}).pl()


def connect() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection in UTC with the `op_key` macro."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for macro in MACROS:
        con.execute(macro)
    return con


def sha_key(column: str | pl.Expr) -> pl.Expr:
    """An int64 key of a hex SHA-256 text: its first 15 digits."""
    col = pl.col(column) if isinstance(column, str) else column
    return col.str.slice(0, 15).str.to_integer(base=16).cast(pl.Int64)


class Cold:
    """Lookups for one ingest, read from the tables."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.con = connect()

    def sync(self) -> None:
        """Nothing is kept: every lookup reads the table."""

    def background(self) -> AbstractContextManager:
        """A pool of one thread for work beside the ingest (`submit`); leaving it waits for that work."""
        return ThreadPoolExecutor(1)

    def close(self) -> None:
        """Release what is kept."""

    def context(self) -> pl.DataFrame:
        return merchants.current(self.ws).drop("loaded_at")

    def log_hits(self, keys: pl.DataFrame) -> pl.DataFrame:
        """The `op_key`s of `keys` found in the log."""
        self.con.register("batch_keys", keys.to_arrow())
        log = self.ws.lake.relation(self.con, LOG)
        return self.con.sql(f"SELECT DISTINCT op_key FROM {log} "
                            "WHERE op_key IN (SELECT op_key FROM batch_keys)").pl()

    def file_seen(self, table: str, file_sha: str) -> bool:
        """Whether `table` may hold rows of the file with this content hash (then its rows are checked)."""
        con = duckdb.connect()  # own connection: called from the raw rows' writer thread
        rel = self.ws.lake.relation(con, table)
        found = con.execute(f"SELECT count(*) FROM {rel} WHERE file_sha256 = ?", [file_sha]).fetchall()
        return bool(found[0][0])

    def quarantined(self, file_sha: str) -> bool:
        """Whether the quarantine may hold rows of this file (then they are checked for resolution)."""
        return True

    def stage(self, name: str, frames: list[pl.DataFrame]) -> Staged:
        return self.ws.lake.stage(name, frames)

    def commit(self, staged: Staged, keys: pl.Series | None = None) -> int:
        """Commit staged rows; `keys` are their index keys (op_key for the log, sha_key for the others)."""
        return self.ws.lake.commit(staged)


class _Index:
    """int64 keys of one column of a Delta table, and the table files they came from: a set of recent keys
    and sorted runs merged log-structured (a run absorbs the next while it is under 4 times its size), so
    adding keeps O(log n) runs and a big sort happens only when the index doubles."""

    RECENT = 65_536  # recent keys become a sorted run past this many

    def __init__(self, key: pl.Expr):
        self.key = key
        self.runs: list[pl.Series] = []
        self.recent: set[int] = set()
        self.files: set[str] = set()
        self.version = -2  # never caught up

    def add(self, keys: pl.Series) -> None:
        if len(keys) <= self.RECENT:
            self.recent.update(keys.to_list())
            if len(self.recent) <= self.RECENT:
                return
            keys, self.recent = pl.Series(list(self.recent), dtype=pl.Int64), set()
        run = keys.cast(pl.Int64).sort()
        while self.runs and len(self.runs[-1]) <= 4 * len(run):
            run = pl.concat([self.runs.pop(), run]).sort()
        self.runs.append(run)

    def contains(self, keys: pl.Series) -> pl.Series:
        keys = keys.cast(pl.Int64)
        found = pl.Series([k in self.recent for k in keys.to_list()], dtype=pl.Boolean)
        for run in self.runs:
            at = run.search_sorted(keys).clip(0, len(run) - 1)
            found = found | (run.gather(at) == keys)
        return found

    def catch_up(self, handle: DeltaTable) -> None:
        """Read the key column of files that appeared since the last look (all of them the first time)."""
        files = set(handle.file_uris())
        if new := files - self.files:
            frame = pl.scan_parquet(list(new)).select(self.key.alias("k")).unique().collect()
            self.add(frame["k"].drop_nulls())
        self.files = files
        self.version = handle.version()


class Warm(Cold):
    """Lookups kept across the commits of one long-lived writer thread (local disk only)."""

    def __init__(self, ws: Workspace):
        super().__init__(ws)
        self.lake = Lake(ws.lake.uri, ws.lake.storage_options)  # this thread's own handles
        self.indexes = {LOG: _Index(pl.col("op_key"))}
        self._context: tuple[int, pl.DataFrame] | None = None
        # kept: starting a thread per commit cost ~2 ms of the GIL
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ledger-intake-raw")

    @contextmanager
    def background(self) -> Iterator[SimpleNamespace]:
        """The kept thread: leaving waits for what was submitted (it must end under the ledger lock)."""
        pending: list[Future] = []

        def submit(fn: Callable, *args) -> Future:
            pending.append(future := self._pool.submit(fn, *args))
            return future

        try:
            yield SimpleNamespace(submit=submit)
        finally:
            wait(pending)

    def close(self) -> None:
        self._pool.shutdown()

    def _handle(self, name: str) -> DeltaTable | None:
        version = self.lake.latest_version(name)
        return self.lake._handles.get(name) if version >= 0 else None

    def _index(self, name: str) -> _Index:
        index = self.indexes.get(name)
        if index is None:
            index = self.indexes[name] = _Index(sha_key("file_sha256"))
        handle = self._handle(name)
        if handle is not None and index.version != handle.version():
            index.catch_up(handle)
        return index

    def sync(self) -> None:
        """Bring the log's index up to the latest version (under the ledger lock: no commit can race it)."""
        self._index(LOG)

    def context(self) -> pl.DataFrame:
        version = self.lake.latest_version(MERCHANT_CONTEXT.name)
        if self._context is None or self._context[0] != version:
            frame = merchants.from_table(self._handle(MERCHANT_CONTEXT.name))
            self._context = (version, frame.drop("loaded_at"))
        return self._context[1]

    def log_hits(self, keys: pl.DataFrame) -> pl.DataFrame:
        maybe = keys.filter(self._index(LOG).contains(keys["op_key"]))
        return super().log_hits(maybe) if len(maybe) else maybe.select("op_key").head(0)

    def file_seen(self, table: str, file_sha: str) -> bool:
        key = pl.select(sha_key(pl.lit(file_sha))).to_series()
        return bool(self._index(table).contains(key)[0]) and super().file_seen(table, file_sha)

    def quarantined(self, file_sha: str) -> bool:
        return self.file_seen(LEDGER_QUARANTINE.name, file_sha)

    def stage(self, name: str, frames: list[pl.DataFrame]) -> Staged:
        return self.lake.stage(name, frames)

    def commit(self, staged: Staged, keys: pl.Series | None = None) -> int:
        index = self._index(staged.name) if staged.name in self.indexes else None
        version = self.lake.commit(staged, self._handle(staged.name))
        if index is not None and keys is not None and index.version == version - 1:
            index.add(keys)
            root = self.lake.table_uri(staged.name).removeprefix("file://")
            index.files.update(f"{root}/{a.path}" for a in staged.actions)
            index.version = version
        return version
