"""Questions analysts, finance and the adapters ask of the ledger's views, answered in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from ops_pipeline import analytics
from ops_pipeline.errors import InvalidInput
from ops_pipeline.workspace import Workspace


@dataclass(frozen=True)
class Rows:
    """A query's column names and rows, for any adapter to print or serialize."""

    columns: list[str]
    rows: list[tuple]


def parse_month(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise InvalidInput(f"month: {value!r} is not YYYY-MM") from None


def turnover(ws: Workspace, month: str | None = None, merchant_id: str | None = None) -> Rows:
    """End-of-month turnover per merchant, currency and source (the `monthly_turnover` view), filtered."""
    where, params = ["TRUE"], {}
    if month:
        where.append("month = $month")
        params["month"] = parse_month(month)
    if merchant_id:
        where.append("merchant_id = $merchant")
        params["merchant"] = merchant_id
    con = analytics.connect(ws)
    rel = con.sql(f"SELECT * FROM monthly_turnover WHERE {' AND '.join(where)} ORDER BY ALL", params=params)
    return Rows(rel.columns, rel.fetchall())


def open_quarantine(con: duckdb.DuckDBPyConnection) -> int:
    """Quarantined rows not yet resolved, on a connection with the lake views."""
    return con.sql("SELECT count(*) FROM ledger_quarantine WHERE status = 'open'").fetchall()[0][0]


@contextmanager
def quarantine_connection(ws: Workspace) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with only the `ledger_quarantine` view (and its two lake tables): a few ms, where
    the whole set of lake views costs a fold of the log's tail."""
    with ws.lake.connect("ledger_quarantine", "quarantine_resolutions") as con:
        con.execute((analytics.SQL_DIR / "views" / "ledger_quarantine.sql").read_text())
        yield con


_BY_REASON: dict[tuple, dict[str, int]] = {}  # by lake and table versions: a new commit is a new key


def open_quarantine_by_reason(ws: Workspace) -> dict[str, int]:
    """Open quarantined rows per reason code, most first. Remembered per version of the two tables (checking
    the versions costs a stat; a DuckDB connection costs 15-20 ms, more than a whole console page may)."""
    tables = ("ledger_quarantine", "quarantine_resolutions")
    key = (ws.settings.lake_uri, *(ws.lake.latest_version(name) for name in tables))
    found = _BY_REASON.get(key)
    if found is None:
        with quarantine_connection(ws) as con:
            found = dict(con.sql("SELECT reason_code, count(*) AS n FROM ledger_quarantine "
                                 "WHERE status = 'open' GROUP BY 1 ORDER BY n DESC, 1").fetchall())
        if len(_BY_REASON) > 64:
            _BY_REASON.clear()
        _BY_REASON[key] = found
    return dict(found)


QUARANTINE_STATUSES = ("open", "resolved", "all")
ORDER = "quarantined_at, source, file_sha256, row_number"  # a quarantine_id is source, file hash, row
PAGE = 50


@dataclass(frozen=True)
class QuarantineRow:
    quarantine_id: str
    source: str
    reason_code: str
    reason: str
    file_name: str
    row_number: int
    raw: str
    quarantined_at: datetime
    status: str
    resolved_at: datetime | None


@dataclass(frozen=True)
class QuarantinePage:
    rows: list[QuarantineRow]
    next_after: str | None  # the last row's quarantine_id when there are more rows


def quarantine_rows(ws: Workspace, reason: str | None = None, status: str = "open", after: str | None = None,
                    limit: int = PAGE) -> QuarantinePage:
    """Quarantined rows, newest first (keyset on ORDER, which the id determines), by reason and status."""
    if status not in QUARANTINE_STATUSES:
        raise InvalidInput(f"status: {status!r} is not one of {', '.join(QUARANTINE_STATUSES)}")
    where, params = ["TRUE"], {}
    if status != "all":
        where.append("status = $status")
        params["status"] = status
    if reason:
        where.append("reason_code = $reason")
        params["reason"] = reason
    if after:
        where.append(f"({ORDER}) < (SELECT ({ORDER}) FROM ledger_quarantine WHERE quarantine_id = $after)")
        params["after"] = after
    columns = ", ".join(QuarantineRow.__dataclass_fields__)
    with quarantine_connection(ws) as con:
        found = con.sql(f"SELECT {columns} FROM ledger_quarantine WHERE {' AND '.join(where)} "
                        f"ORDER BY ({ORDER}) DESC LIMIT {int(limit) + 1}",
                        params=params).fetchall()
    rows = [QuarantineRow(*r) for r in found[:limit]]
    return QuarantinePage(rows, rows[-1].quarantine_id if len(found) > limit else None)


@dataclass(frozen=True)
class LogEntry:
    """One entry of the balance-operations log, as a person reads it."""

    uuid: str
    source: str
    type: str
    amount_minor: int
    currency: str
    operation_date: datetime
    recorded_at: datetime
    falcon_operation_id: str
    external_reference: str | None


def recent_entries(ws: Workspace, merchant_id: str, limit: int = PAGE) -> list[LogEntry]:
    """A merchant's latest log entries (by recorded time, then operation date), at most `limit`."""
    columns = ", ".join(LogEntry.__dataclass_fields__)
    with ws.lake.connect("balance_operations") as con:
        found = con.sql(f"SELECT {columns} FROM lake_balance_operations WHERE merchant_id = $merchant "
                        f"ORDER BY recorded_at DESC, operation_date DESC, uuid DESC LIMIT {int(limit)}",
                        params={"merchant": merchant_id}).fetchall()
    return [LogEntry(*r) for r in found]
