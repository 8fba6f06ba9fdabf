"""Balances from the log: the cache in the operational DB, exact reads, as-of reads, replay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import anyio
import duckdb
import polars as pl
import pyarrow as pa
from sqlalchemy import Connection, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ops_pipeline.db.schema import balance_cache, balance_cache_state, ledger_holds
from ops_pipeline.db.types import UTCDateTime
from ops_pipeline.errors import NotFound
from ops_pipeline.ledger import live
from ops_pipeline.ledger.live import FOLD_COLUMNS, LOG, fold_sql
from ops_pipeline.money import to_major
from ops_pipeline.workspace import Workspace


@cache
def _duckdb() -> duckdb.DuckDBPyConnection:
    """The process's in-memory DuckDB (UTC), made on first use: folds run in cursors of it, which cost
    microseconds where a new connection costs tens of milliseconds."""
    con = duckdb.connect()
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    return con


@contextmanager
def _cursor() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor of `_duckdb()` (any thread), closed after use."""
    cursor = _duckdb().cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def fold(entries: pa.Table, con: duckdb.DuckDBPyConnection | None = None) -> pl.DataFrame:
    """Per (merchant, currency) sums of a set of log entries; in `con` when given, else in a cursor."""
    if con is None:
        with _cursor() as cursor:
            return fold(entries, cursor)
    con.register("entries", entries)
    return con.sql(fold_sql("entries")).pl()


@dataclass(frozen=True)
class Balance:
    merchant_id: str
    currency: str
    confirmed_minor: int
    settled_minor: int
    held_minor: int
    reserved_minor: int  # already out of settled: not part of available
    as_of: datetime
    lake_version: int

    @property
    def available_minor(self) -> int:
        return self.settled_minor - self.held_minor

    def to_dict(self) -> dict:
        """Major units as exact decimal strings, as the API and the CLI show them (built field by field:
        `dataclasses.asdict` deep-copies every value, a tenth of a balance request's CPU)."""
        figures = {"confirmed_balance": self.confirmed_minor, "settled_balance": self.settled_minor,
                   "held": self.held_minor, "available": self.available_minor,
                   "reserved": self.reserved_minor}
        return {"merchant_id": self.merchant_id, "currency": self.currency, "as_of": self.as_of.isoformat(),
                "lake_version": self.lake_version,
                **{key: str(to_major(minor, self.currency)) for key, minor in figures.items()}}


# -- cache -------------------------------------------------------------------------------------------

_SUMS = ("confirmed_minor", "settled_minor", "reserved_minor", "entries")
# PostgreSQL adds a whole fold in one statement from column arrays: no per-row work in SQLAlchemy (a
# multi-row VALUES is compiled afresh for every size, and an ON CONFLICT executemany goes row by row).
_PG_UPSERT = text(
    f"INSERT INTO balance_cache (merchant_id, currency, {', '.join(_SUMS)}, updated_at)"
    " SELECT d.*, CAST(:updated_at AS TIMESTAMPTZ) FROM unnest(CAST(:merchant_id AS TEXT[]),"
    " CAST(:currency AS TEXT[]), " + ", ".join(f"CAST(:{c} AS BIGINT[])" for c in _SUMS) + ") AS d"
    " ON CONFLICT (merchant_id, currency) DO UPDATE SET updated_at = excluded.updated_at, "
    + ", ".join(f"{c} = balance_cache.{c} + excluded.{c}" for c in _SUMS)
)


def _upsert(conn: Connection, deltas: pl.DataFrame, now: datetime) -> None:
    """Add folded sums (merchant_id, currency and `_SUMS`) to the cache."""
    if conn.dialect.name == "postgresql":
        columns = {c: deltas[c].to_list() for c in ("merchant_id", "currency", *_SUMS)}
        conn.execute(_PG_UPSERT, {**columns, "updated_at": now})
        return
    rows = [dict(r, updated_at=now) for r in deltas.iter_rows(named=True)]
    for start in range(0, len(rows), 5000):
        stmt = sqlite_insert(balance_cache).values(rows[start : start + 5000])
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["merchant_id", "currency"],
                set_={"updated_at": stmt.excluded.updated_at,
                      **{c: balance_cache.c[c] + stmt.excluded[c] for c in _SUMS}},
            )
        )


def apply_to_cache(ws: Workspace, deltas: pl.DataFrame, from_version: int, to_version: int) -> bool:
    """Add folded entries of commits (from_version, to_version] to the cache, if it stands at from_version.

    Compare-and-set on the version: two processes can never apply the same commits twice.
    """
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        moved = conn.execute(
            update(balance_cache_state)
            .where(balance_cache_state.c.id == 1, balance_cache_state.c.applied_version == from_version)
            .values(applied_version=to_version, updated_at=now)
        ).rowcount
        if moved != 1:
            conn.rollback()
            return False
        if len(deltas):
            _upsert(conn, deltas, now)
    return True


def cached_version(ws: Workspace) -> int:
    with ws.engine.connect() as conn:
        return conn.execute(select(balance_cache_state.c.applied_version)).scalar_one()


def refresh_cache(ws: Workspace) -> tuple[int, int]:
    """Fold the commits the cache has not seen; cost grows with new entries only. An empty cache (version -1)
    is seeded from a replay at the latest version: a change feed from the first commit would need files a
    vacuum after compaction may have removed.

    Returns (version, new entries).
    """
    while True:
        applied = cached_version(ws)
        latest = ws.lake.latest_version(LOG)
        if latest <= applied:
            return applied, 0
        if applied < 0:
            deltas = replay(ws, latest)
        else:
            deltas = fold(ws.lake.changes(LOG, applied, latest, FOLD_COLUMNS))
        if apply_to_cache(ws, deltas, applied, latest):
            return latest, int(deltas["entries"].sum() or 0)


# -- reads -------------------------------------------------------------------------------------------

# Reads of one merchant's balance, with bind parameters `merchant_id` and `now`: built once, compiled once.
_MERCHANT, _NOW = bindparam("merchant_id"), bindparam("now", type_=UTCDateTime())
HELD_QUERY = (
    select(ledger_holds.c.currency, func.sum(ledger_holds.c.amount_minor))
    .where(ledger_holds.c.merchant_id == _MERCHANT, live.active_holds(_NOW))
    .group_by(ledger_holds.c.currency)
)
CACHE_QUERY = (
    select(balance_cache_state.c.applied_version, balance_cache.c.currency, balance_cache.c.confirmed_minor,
           balance_cache.c.settled_minor, balance_cache.c.reserved_minor)
    .select_from(balance_cache_state.outerjoin(balance_cache, balance_cache.c.merchant_id == _MERCHANT))
    .where(balance_cache_state.c.id == 1)
)


def held_by_currency(conn: Connection, merchant_id: str, now: datetime) -> dict[str, int]:
    rows = conn.execute(HELD_QUERY, {"merchant_id": merchant_id, "now": now})
    return {cur: int(total) for cur, total in rows}


def available_all(conn: Connection, now: datetime, merchants: list[str], lock: bool = False
                  ) -> dict[tuple[str, str], int]:
    """Available (settled - held) of these merchants' cached balances, by (merchant, currency); exact when the
    cache is current. `lock` takes those rows' write locks, as `place_hold` does, so no hold slips in between
    (and only theirs: other merchants' holds go on)."""
    c, h = balance_cache.c, ledger_holds.c
    available: dict[tuple[str, str], int] = {}
    ordered = sorted(set(merchants))  # locks taken in one order by every caller
    for start in range(0, len(ordered), 5000):
        chunk = ordered[start : start + 5000]
        query = select(c.merchant_id, c.currency, c.settled_minor).where(c.merchant_id.in_(chunk))
        rows = conn.execute(query.with_for_update() if lock else query)
        available.update({(m, cur): v for m, cur, v in rows})
        held = conn.execute(
            select(h.merchant_id, h.currency, func.sum(h.amount_minor))
            .where(h.merchant_id.in_(chunk), live.active_holds(now)).group_by(h.merchant_id, h.currency)
        )
        for m, cur, total in held:
            available[(m, cur)] = available.get((m, cur), 0) - int(total)
    return available


def _held_at(conn: Connection, merchant_id: str, at: datetime) -> dict[str, int]:
    h = ledger_holds.c
    rows = conn.execute(
        select(h.currency, func.sum(h.amount_minor))
        .where(
            h.merchant_id == merchant_id,
            h.created_at <= at,
            or_(h.ended_at.is_(None), h.ended_at > at),
            or_(h.expires_at.is_(None), h.expires_at > at),
        )
        .group_by(h.currency)
    )
    return {currency: int(total) for currency, total in rows}


def get_balances(ws: Workspace, merchant_id: str, currency: str | None = None) -> list[Balance]:
    """Exact balances now: the cache plus any log entries committed after it."""
    now = datetime.now(UTC)
    params = {"merchant_id": merchant_id, "now": now}
    with ws.read_engine.connect() as conn:
        rows = conn.execute(CACHE_QUERY, params).all()
        held = conn.execute(HELD_QUERY, params).all()
    return exact(ws, merchant_id, currency, rows, held, now)


async def get_balances_native(ws: Workspace, reader, merchant_id: str, currency: str | None = None
                              ) -> list[Balance]:
    """`get_balances` on the API's event loop through `reader` (`db.native`: asyncpg or sqlite3); the
    lake work goes to a thread only when it is more than one stat (a remote lake, or entries newer than
    the cache)."""
    now = datetime.now(UTC)
    rows, held = await reader.fetch([CACHE_QUERY, HELD_QUERY], {"merchant_id": merchant_id, "now": now})
    if ws.lake.is_local:
        latest = ws.lake.peek_version(LOG)
        newer = [] if latest <= rows[0][0] else remembered(ws, merchant_id, rows[0][0], latest)
        if newer is not None:
            return exact(ws, merchant_id, currency, rows, held, now, latest, newer)
    return await anyio.to_thread.run_sync(exact, ws, merchant_id, currency, rows, held, now)


def exact(
    ws: Workspace, merchant_id: str, currency: str | None, rows, held_rows, now: datetime,
    latest: int | None = None, newer: list[dict] | None = None,
) -> list[Balance]:
    """Balances from CACHE_QUERY's and HELD_QUERY's rows (tuples), plus log entries newer than the cache
    (`latest`: the log version when the caller has just read it; `newer`: those entries' folded sums of the
    merchant when the caller has them already)."""
    applied = rows[0][0]
    sums = {cur: list(figures) for _, cur, *figures in rows if cur is not None}
    latest = ws.lake.peek_version(LOG) if latest is None else latest
    if latest > applied and newer is None:
        newer = remembered(ws, merchant_id, applied, latest)
        if newer is None and applied < 0:
            # an empty cache (new, or emptied by a migration): the whole log, not a change feed from the
            # first commit, which a vacuum after compaction may have removed
            newer = replay(ws, latest, "merchant_id = $m", {"m": merchant_id}).to_dicts()
        elif newer is None:
            new = pl.from_arrow(ws.lake.changes(LOG, applied, latest, FOLD_COLUMNS)).filter(
                pl.col("merchant_id") == merchant_id)
            newer = fold(new.to_arrow()).iter_rows(named=True)
    for r in newer or ():
        total = sums.setdefault(r["currency"], [0, 0, 0])
        total[0] += r["confirmed_minor"]
        total[1] += r["settled_minor"]
        total[2] += r["reserved_minor"]
    held = {cur: int(total) for cur, total in held_rows}
    return _balances(merchant_id, currency, sums, held, now, max(latest, applied))


@contextmanager
def remembering(ws: Workspace, version: int, deltas: pl.DataFrame) -> Iterator[None]:
    """Around the log commit that is to be `version` (under the ledger lock: no other writer can take that
    version): its folded sums (`fold`'s columns) are kept from before it is visible, so exact reads in this
    process add them without reading the commit back from the lake, and forgotten if the block fails."""
    per_merchant: dict[str, list[dict]] = {}
    for row in deltas.iter_rows(named=True):
        per_merchant.setdefault(row["merchant_id"], []).append(row)
    ws.lake.remember(LOG, "fold", version, per_merchant)
    try:
        yield
    except BaseException:
        ws.lake.forget(LOG, "fold", version)
        raise


def remembered(ws: Workspace, merchant_id: str, applied: int, latest: int) -> list[dict] | None:
    """The merchant's folded sums of the log commits (applied, latest] as `remember` kept them, or None when
    one of those commits was not kept (made by another process, or long ago)."""
    rows: list[dict] = []
    for version in range(applied + 1, latest + 1):
        found = ws.lake.recall(LOG, "fold", version)
        if found is None:
            return None
        rows.extend(found.get(merchant_id, ()))
    return rows


def _balances(merchant_id, currency, sums, held, as_of, version) -> list[Balance]:
    """`sums`: [confirmed, settled, reserved] by currency."""
    for cur in held:
        sums.setdefault(cur, [0, 0, 0])
    out = [
        Balance(merchant_id, cur, conf, sett, held.get(cur, 0), res, as_of, version)
        for cur, (conf, sett, res) in sorted(sums.items())
        if currency is None or cur == currency
    ]
    if not out:
        what = f"merchant_id: {merchant_id!r}" + (
            f" has no {currency} balance" if currency else " has no balances")
        raise NotFound(what)
    return out


def balances_as_of(
    ws: Workspace, merchant_id: str, at: datetime, currency: str | None = None
) -> list[Balance]:
    """Balances from the log for operations dated up to `at`, with the holds active at `at`."""
    version = ws.lake.latest_version(LOG)
    folded = replay(ws, version, "merchant_id = $m AND operation_date <= $at",
                    {"m": merchant_id, "at": at}).rows()
    sums = {cur: [conf, sett, res] for _, cur, conf, sett, res, _ in folded}
    with ws.engine.connect() as conn:
        held = _held_at(conn, merchant_id, at)
    return _balances(merchant_id, currency, sums, held, at, version)


# -- replay ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RebuildResult:
    version: int
    entries: int
    balances: int
    differences: list[dict]
    seconds: float


def replay(ws: Workspace, version: int, where: str = "TRUE", params: dict | None = None) -> pl.DataFrame:
    """Fold the whole log as of `version` (its entries matching `where`) into fresh balances."""
    with _cursor() as cursor:
        rel = ws.lake.relation(cursor, LOG, version)
        return cursor.sql(fold_sql(rel, where), params=params).pl()


def rebuild(ws: Workspace) -> RebuildResult:
    """Replay the whole log and compare with the cache at the same version; lists every difference."""
    start = time.perf_counter()
    refresh_cache(ws)
    with ws.engine.connect() as conn:
        if conn.dialect.name == "postgresql":  # cache rows and version from one snapshot
            conn.execution_options(isolation_level="REPEATABLE READ")
        version = conn.execute(select(balance_cache_state.c.applied_version)).scalar_one()
        cols = balance_cache.c
        rows = conn.execute(select(cols.merchant_id, cols.currency, *(cols[s] for s in _SUMS)))
        cache = pl.DataFrame(
            [tuple(r) for r in rows],
            schema={"merchant_id": pl.String, "currency": pl.String, **dict.fromkeys(_SUMS, pl.Int64)},
            orient="row",
        )
    fresh = replay(ws, version) if version >= 0 else cache.head(0)
    joined = fresh.join(cache, on=["merchant_id", "currency"], how="full", coalesce=True, suffix="_cache")
    diffs = joined.filter(
        pl.any_horizontal(
            pl.col(c).fill_null(0) != pl.col(f"{c}_cache").fill_null(0)
            for c in _SUMS
        )
    )
    return RebuildResult(
        version=version,
        entries=int(fresh["entries"].sum() or 0),
        balances=len(fresh),
        differences=diffs.sort("merchant_id", "currency").to_dicts(),
        seconds=time.perf_counter() - start,
    )
