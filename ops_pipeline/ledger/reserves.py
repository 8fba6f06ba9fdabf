"""The rolling reserve: give reserved money back once the merchant context's `reserve_days` have passed.

A `reserve` operation or a capture's `rolling_reserve` entry takes money out of the merchant's balance
(ledger/split.py). When `operation_date + reserve_days` is past, `release_due` appends one `reserve_expiry`
entry per reserve with what is left of it (its amount less the `reserve_release` operations naming it),
under the reserve's own source and falcon_operation_id, dated at the due time. Idempotent: a reserve
already given back is skipped, and the ledger lock makes two runs one after the other. `reserve_days` 0
keeps a reserve until it is released explicitly. The days are the merchant context's at release time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import polars as pl

from ops_pipeline import audit
from ops_pipeline.lake.tables import MERCHANT_CONTEXT
from ops_pipeline.ledger import balances, merchants
from ops_pipeline.ledger.live import LOG
from ops_pipeline.ledger.split import uuid7_prefix, uuids
from ops_pipeline.observability import metrics
from ops_pipeline.workspace import Workspace

EXPIRY = "reserve_expiry"
RESERVING = ("reserve", "rolling_reserve")


@dataclass(frozen=True)
class ReleaseResult:
    released: int  # reserves given back by this run
    amounts: dict[str, int]  # minor units per currency
    lake_version: int


def _due(ws: Workspace, con: duckdb.DuckDBPyConnection, now: datetime) -> pl.DataFrame:
    """Reserves past their due time with something left, as the `reserve_expiry` entries that give it back."""
    log = ws.lake.relation(con, LOG)
    con.register("context", merchants.current(ws).select(*merchants.KEY, "reserve_days").to_arrow())
    reserving = ", ".join(f"'{t}'" for t in RESERVING)
    return con.sql(f"""
        WITH reserves AS (
            SELECT l.*, l.operation_date + to_days(c.reserve_days::INTEGER) AS due
            FROM {log} l JOIN context c USING (psp_id, local_merchant_id, shop_id, currency)
            WHERE l.type IN ({reserving}) AND c.reserve_days > 0
        ),
        given AS (
            SELECT source, CASE WHEN type = '{EXPIRY}' THEN falcon_operation_id ELSE external_reference END
                   AS falcon_operation_id, sum(amount_minor) AS amount_minor
            FROM {log} WHERE type IN ('{EXPIRY}', 'reserve_release') GROUP BY ALL
        )
        SELECT * FROM (
            SELECT r.external_reference, r.currency,
                   (-r.amount_minor - coalesce(g.amount_minor, 0))::BIGINT AS amount_minor,
                   '{EXPIRY}' AS type, r.falcon_operation_id, r.source, r.due AS operation_date,
                   r.local_merchant_id, r.shop_id, r.balance_shop_id, r.psp_id, r.merchant_id, r.op_key
            FROM reserves r LEFT JOIN given g USING (source, falcon_operation_id)
            WHERE r.due <= $now
        ) WHERE amount_minor > 0  -- given back already (expired, or released in full): nothing left
        ORDER BY operation_date, source, falcon_operation_id
    """, params={"now": now}).pl()


def release_due(ws: Workspace, now: datetime | None = None, actor: str = "system:reserve-release"
                ) -> ReleaseResult:
    """Append a `reserve_expiry` entry for every reserve due by `now` (one commit), with an audit record."""
    now = now or datetime.now(UTC)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    run_id = str(uuid.uuid4())
    with ws.lock("ledger"):
        due = _due(ws, con, now)
        before = ws.lake.latest_version(LOG)
        if not len(due):
            return ReleaseResult(0, {}, before)
        entries = due.with_columns(
            uuid=uuids(uuid7_prefix(now), 0, len(due)),
            recorded_at=pl.lit(now).cast(pl.Datetime("us", "UTC")), ingest_id=pl.lit(run_id),
        ).to_arrow()
        version = ws.lake.append(LOG, entries)
        if not balances.apply_to_cache(ws, balances.fold(entries, con), before, version):
            balances.refresh_cache(ws)
        metrics.LEDGER_LOG_VERSION.set(version)
    amounts = dict(due.group_by("currency").agg(pl.col("amount_minor").sum()).sort("currency").iter_rows())
    with ws.engine.begin() as conn:
        audit.record(conn, actor=actor, entity_type="ledger_reserve", entity_id=run_id, action="release_due",
                     after={"released": len(due), "amounts_minor": amounts, "lake_version": version,
                            "due_by": now.isoformat()},
                     reason=f"{MERCHANT_CONTEXT.name}.reserve_days passed")
    return ReleaseResult(len(due), amounts, version)

