"""Balance snapshots in the lake (history of balances) and the data-quality checks of the log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import polars as pl
from sqlalchemy import select

from ops_pipeline import audit
from ops_pipeline.db.schema import balance_cache
from ops_pipeline.lake.tables import BALANCE_OPERATIONS, BALANCE_SNAPSHOTS, MERCHANT_CONTEXT
from ops_pipeline.ledger import balances, live
from ops_pipeline.observability import metrics
from ops_pipeline.workspace import Workspace

REPLAY_CHECK = "replay_equals_cache"  # audit entity id of each replay check's outcome


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    snapshot_at: datetime
    lake_version: int
    balances: int
    new_entries: int
    preview: pl.DataFrame


def write_snapshot(ws: Workspace) -> Snapshot:
    """Fold new log entries into the cache, then append every balance (with holds) as one snapshot.

    Cost grows with the entries since the last refresh and the number of balances, not the log size.
    """
    version, new_entries = balances.refresh_cache(ws)
    now = datetime.now(UTC)
    c = balance_cache.c
    with ws.engine.connect() as conn:
        cache = pl.DataFrame(
            [tuple(r) for r in
             conn.execute(select(c.merchant_id, c.currency, c.confirmed_minor, c.settled_minor))],
            schema={"merchant_id": pl.String, "currency": pl.String, "confirmed_minor": pl.Int64,
                    "settled_minor": pl.Int64},
            orient="row",
        )
        held = pl.from_arrow(live.held_all(conn, now))
    snapshot_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    rows = (
        cache.join(held, on=["merchant_id", "currency"], how="full", coalesce=True)
        .with_columns(pl.col("confirmed_minor", "settled_minor", "held_minor").fill_null(0))
        .with_columns(
            available_minor=pl.col("settled_minor") - pl.col("held_minor"),
            snapshot_id=pl.lit(snapshot_id),
            snapshot_at=pl.lit(now).cast(pl.Datetime("us", "UTC")),
            lake_version=pl.lit(version, pl.Int64),
        )
        .sort("merchant_id", "currency")
    )
    ws.lake.append(BALANCE_SNAPSHOTS.name, rows.to_arrow())
    return Snapshot(snapshot_id, now, version, len(rows), new_entries, rows.head(10))


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    description: str
    count: int
    examples: list[dict]


def check_unique_keys(ws: Workspace) -> CheckResult:
    """No two log entries share (source, falcon_operation_id, type)."""
    con = duckdb.connect()
    log = ws.lake.relation(con, BALANCE_OPERATIONS.name)
    dups = con.sql(f"""
        SELECT source, falcon_operation_id, type, count(*) AS n FROM {log}
        GROUP BY ALL HAVING count(*) > 1 ORDER BY n DESC LIMIT 20
    """).pl()
    total = con.sql(f"""SELECT count(*) FROM (SELECT 1 FROM {log} GROUP BY source, falcon_operation_id, type
                        HAVING count(*) > 1)""").fetchall()[0][0]
    return CheckResult(total == 0, f"{total} duplicated operation keys", total, dups.to_dicts())


def check_fee_rules(ws: Workspace) -> CheckResult:
    """Every CO/RO entry maps to a merchant context row, i.e. has its fee rule."""
    con = duckdb.connect()
    log = ws.lake.relation(con, BALANCE_OPERATIONS.name)
    ctx = ws.lake.relation(con, MERCHANT_CONTEXT.name)
    missing = con.sql(f"""
        SELECT o.source, o.psp_id, o.local_merchant_id, o.shop_id, o.currency, count(*) AS entries
        FROM {log} o ANTI JOIN {ctx} m USING (psp_id, local_merchant_id, shop_id, currency)
        WHERE o.source IN ('CO', 'RO') GROUP BY ALL ORDER BY entries DESC
    """).pl()
    total = int(missing["entries"].sum() or 0)
    return CheckResult(
        total == 0, f"{total} CO/RO entries without a fee rule", total, missing.head(20).to_dicts()
    )


def check_replay(ws: Workspace) -> CheckResult:
    """Replaying the whole log gives exactly the cached balances."""
    result = balances.rebuild(ws)
    with ws.engine.begin() as conn:  # the console shows the latest
        audit.record(conn, actor="system:replay_check", entity_type="ledger_check", entity_id=REPLAY_CHECK,
                     action="failed" if result.differences else "passed",
                     after={"differences": len(result.differences), "balances": result.balances,
                            "version": result.version})
    metrics.LEDGER_REPLAY_OK.set(0 if result.differences else 1)
    metrics.LEDGER_REPLAY_AT.set(datetime.now(UTC).timestamp())
    return CheckResult(
        not result.differences,
        f"{len(result.differences)} differences over {result.balances} balances at version {result.version}",
        len(result.differences),
        result.differences[:20],
    )
