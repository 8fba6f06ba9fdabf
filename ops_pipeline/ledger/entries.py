"""Entries that do not come from payment files: payouts and adjustments (corrections are new entries)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from ops_pipeline.errors import Conflict, InvalidInput
from ops_pipeline.lake.tables import BALANCE_OPERATIONS
from ops_pipeline.ledger import balances
from ops_pipeline.money import exponent
from ops_pipeline.observability import metrics
from ops_pipeline.workspace import Workspace

POSTABLE_SOURCES = ("PAYOUT", "ADJUSTMENT")
COMPARED = ("merchant_id", "currency", "amount_minor", "type")


@dataclass(frozen=True)
class Entry:
    """One log entry; `entry_id` is its idempotency key (stored as `falcon_operation_id`)."""

    source: str
    entry_id: str
    merchant_id: str
    currency: str
    amount_minor: int
    type: str
    reference: str | None = None
    operation_date: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self):
        if self.source not in POSTABLE_SOURCES:
            raise InvalidInput(f"source: {self.source!r} is not one of {', '.join(POSTABLE_SOURCES)}")
        exponent(self.currency)
        if self.amount_minor == 0:
            raise InvalidInput("amount: must not be zero")
        if not self.entry_id or not self.merchant_id:
            raise InvalidInput("entry_id and merchant_id: values are required")


@dataclass(frozen=True)
class PostResult:
    posted: int
    duplicates: int
    lake_version: int


def post_entries(ws: Workspace, entries: list[Entry], ingest_id: str) -> PostResult:
    """Append entries in one commit; a known entry id with the same content is a no-op, else a conflict."""
    if not entries:
        return PostResult(0, 0, ws.lake.latest_version(BALANCE_OPERATIONS.name))
    now = datetime.now(UTC)
    rows = pa.Table.from_pylist(
        [{**vars(e), "falcon_operation_id": e.entry_id, "external_reference": e.reference} for e in entries]
    )
    con = duckdb.connect()
    con.register("posted", rows)
    con.execute("SET TimeZone = 'UTC'")
    with ws.lock("ledger"):
        log = ws.lake.relation(con, BALANCE_OPERATIONS.name)
        key = "(md5_number_lower(source || ':' || falcon_operation_id) >> 1)::BIGINT"
        stored = con.sql(f"""
            SELECT p.falcon_operation_id, {", ".join(f"p.{c} AS new_{c}, l.{c} AS old_{c}" for c in COMPARED)}
            FROM posted p JOIN {log} l ON l.op_key = {
            key.replace("source", "p.source").replace("falcon_operation_id", "p.falcon_operation_id")
        }
                 AND l.source = p.source AND l.falcon_operation_id = p.falcon_operation_id
        """).fetchall()
        seen = set()
        for row in stored:
            entry_id, values = row[0], row[1:]
            if any(values[i] != values[i + 1] for i in range(0, len(values), 2)):
                raise Conflict(f"entry_id: {entry_id!r} was already posted with different content")
            seen.add(entry_id)
        new = con.sql(
            f"""
            SELECT uuidv7()::VARCHAR AS uuid, external_reference, amount_minor, currency, type,
                   falcon_operation_id, source, operation_date, $now AS recorded_at,
                   NULL AS local_merchant_id, NULL AS shop_id, NULL AS balance_shop_id, NULL AS psp_id,
                   merchant_id, {key} AS op_key, $ingest_id AS ingest_id
            FROM posted WHERE falcon_operation_id NOT IN (SELECT unnest($seen::VARCHAR[]))
        """,
            params={"now": now, "ingest_id": ingest_id, "seen": sorted(seen)},
        ).to_arrow_table()
        before = ws.lake.latest_version(BALANCE_OPERATIONS.name)
        version = before
        if new.num_rows:
            version = ws.lake.append(BALANCE_OPERATIONS.name, new)
            if not balances.apply_to_cache(ws, balances.fold(new, con), before, version):
                balances.refresh_cache(ws)
            metrics.LEDGER_LOG_VERSION.set(version)
    return PostResult(posted=new.num_rows, duplicates=len(seen), lake_version=version)
