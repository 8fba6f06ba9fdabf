"""Questions analysts, finance and the adapters ask of the ledger's views, answered in one place."""

from __future__ import annotations

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


def quarantine_connection(ws: Workspace) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with only the `ledger_quarantine` view (and its two lake tables): a few ms, where
    the whole set of lake views costs a fold of the log's tail."""
    con = duckdb.connect()
    for name in ("ledger_quarantine", "quarantine_resolutions"):
        ws.lake.relation(con, name)
    con.execute((analytics.SQL_DIR / "views" / "ledger_quarantine.sql").read_text())
    return con


def open_quarantine_by_reason(ws: Workspace) -> dict[str, int]:
    """Open quarantined rows per reason code, most first."""
    con = quarantine_connection(ws)
    try:
        return dict(con.sql("SELECT reason_code, count(*) AS n FROM ledger_quarantine WHERE status = 'open' "
                            "GROUP BY 1 ORDER BY n DESC, 1").fetchall())
    finally:
        con.close()
