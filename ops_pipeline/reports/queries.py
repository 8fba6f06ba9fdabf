"""Every number of the finance reports, in DuckDB SQL over the lake: the log, `recon_results` and the analyst
views `recon_results`, `recon_breaks` and `settlement_aging` (sql/views). Sums are integers (minor units)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import duckdb

from ops_pipeline.analytics import SQL_DIR
from ops_pipeline.lake.tables import BALANCE_OPERATIONS, RECON_RESULTS
from ops_pipeline.ledger.live import fold_sql
from ops_pipeline.reports.model import AgingRow, BreakRow, DayCount, Movement, SummaryRow
from ops_pipeline.workspace import Workspace

VIEWS = ("recon_results.sql", "settlement_aging.sql")
BREAK_LIMIT = 5000  # rows listed; the count says how many there are
LOG = f"lake_{BALANCE_OPERATIONS.name}"
BASES = {"confirmed": "RO", "settled": "CO"}  # the source each balance leaves out (the ledger's fold rule)
# entry types in report order (ledger/split.py); the first five are columns even when nothing moved
TYPE_ORDER = ("capture", "psp_fee", "refund", "payout", "adjustment", "chargeback", "dispute_fee",
              "chargeback_reversal", "withdrawal", "cashback", "fee_adjustment", "reserve", "rolling_reserve",
              "reserve_release", "reserve_expiry")
ALWAYS = TYPE_ORDER[:5]


@contextmanager
def connect(ws: Workspace, today: date) -> Iterator[duckdb.DuckDBPyConnection]:
    """The two lake tables and the views the reports read, with `business_today()` fixed at `today`
    (cheaper than `analytics.connect`, which also folds the log's tail and reads holds)."""
    with ws.lake.connect(BALANCE_OPERATIONS.name, RECON_RESULTS.name) as con:
        con.execute(f"CREATE OR REPLACE TEMP MACRO business_today() AS DATE '{today.isoformat()}'")
        for name in VIEWS:
            con.execute((SQL_DIR / "views" / name).read_text())
        yield con


_STATUS = "CASE WHEN status LIKE 'unmatched%' THEN 'unmatched' ELSE status END"


def summary(con: duckdb.DuckDBPyConnection, first: date, last: date) -> list[SummaryRow]:
    found = con.execute(
        f"SELECT recon, currency, {_STATUS} AS s, count(*), sum(internal_amount_minor)::BIGINT, "
        "sum(external_amount_minor)::BIGINT, sum(amount_difference_minor)::BIGINT FROM recon_results "
        "WHERE business_date BETWEEN $1 AND $2 GROUP BY ALL ORDER BY ALL", [first, last]).fetchall()
    return [SummaryRow(*r) for r in found]


def per_day(con: duckdb.DuckDBPyConnection, first: date, last: date) -> list[DayCount]:
    """Matched and unmatched rows per business date, every date from `first` to `last`."""
    found = {d: (m, u) for d, m, u in con.execute(
        "SELECT business_date, count(*) FILTER (WHERE status NOT LIKE 'unmatched%'), "
        "count(*) FILTER (WHERE status LIKE 'unmatched%') FROM recon_results "
        "WHERE business_date BETWEEN $1 AND $2 GROUP BY 1", [first, last]).fetchall()}
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [DayCount(d, *found.get(d, (0, 0))) for d in days]


_BREAK = ("SELECT break_id, recon, business_date, status, currency, internal_amount_minor, "
          "external_amount_minor, amount_difference_minor, CAST($day - business_date AS INTEGER) AS age, "
          "array_to_string(internal_ids, ', '), array_to_string(external_ids, ', '), reason "
          "FROM recon_breaks ")


def open_breaks(con: duckdb.DuckDBPyConnection, day: date) -> tuple[list[BreakRow], int]:
    """Unmatched rows of the latest runs of dates up to `day`, oldest first (at most BREAK_LIMIT), and their
    count."""
    where = "WHERE status LIKE 'unmatched%' AND business_date <= $day"
    total = con.execute(f"SELECT count(*) FROM recon_breaks {where}", {"day": day}).fetchall()[0][0]
    found = con.execute(f"{_BREAK}{where} ORDER BY business_date, recon, break_id LIMIT {BREAK_LIMIT}",
                        {"day": day}).fetchall()
    return [BreakRow(*r) for r in found], total


def differences(con: duckdb.DuckDBPyConnection, first: date, last: date) -> list[BreakRow]:
    """Rows matched with an amount difference, of the dates `first` to `last`."""
    found = con.execute(f"{_BREAK}WHERE status = 'matched_with_difference' AND business_date BETWEEN $first "
                        "AND $day ORDER BY business_date, recon, break_id",
                        {"first": first, "day": last}).fetchall()
    return [BreakRow(*r) for r in found]


def aging(con: duckdb.DuckDBPyConnection, day: date) -> list[AgingRow]:
    """COs still unreconciled as of `day` (its connection's `business_today()`), per bucket and currency."""
    from ops_pipeline.recon.settlement import BUCKETS

    found = con.execute("SELECT age_bucket, currency, count(*), sum(amount_minor)::BIGINT "
                        "FROM settlement_aging WHERE business_date <= $1 GROUP BY ALL", [day]).fetchall()
    return sorted((AgingRow(*r) for r in found), key=lambda r: (BUCKETS.index(r.bucket), r.currency))


def movements(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime
              ) -> tuple[list[Movement], list[str]]:
    """Per merchant, currency and basis: the balance before `start`, the entries of [start, end) by type, the
    closing balance; against the ledger's fold (`ledger.live.fold_sql`) of the entries before `end`. Also the
    types: the standard ones (`ALWAYS`), then any other found, in report order (`TYPE_ORDER`)."""
    params = {"start": start, "end": end}
    parts = con.execute(
        f"SELECT merchant_id, currency, source, type, "
        f"coalesce(sum(amount_minor) FILTER (WHERE operation_date < $start), 0)::BIGINT, "
        f"coalesce(sum(amount_minor) FILTER (WHERE operation_date >= $start), 0)::BIGINT "
        f"FROM {LOG} WHERE operation_date < $end GROUP BY ALL", params).fetchall()
    ledger = {(m, c): (conf, sett) for m, c, conf, sett, *_ in con.execute(
        fold_sql(LOG, "operation_date < $end"), {"end": end}).fetchall()}
    types = sorted({*ALWAYS, *(r[3] for r in parts if r[5])},  # the standard columns always
                   key=lambda t: (TYPE_ORDER.index(t) if t in TYPE_ORDER else len(TYPE_ORDER), t))
    sums: dict[tuple[str, str, str], list] = {}
    for merchant, currency, source, type_, opening, moved in parts:
        for n, (basis, left_out) in enumerate(BASES.items()):
            if source == left_out:
                continue
            acc = sums.setdefault((merchant, currency, basis), [0, {t: 0 for t in types}, n])
            acc[0] += opening
            if moved:
                acc[1][type_] += moved
    out = [Movement(m, c, basis, opening, by_type, opening + sum(by_type.values()),
                    ledger.get((m, c), (0, 0))[n])
           for (m, c, basis), (opening, by_type, n) in sorted(sums.items())]
    return out, types
