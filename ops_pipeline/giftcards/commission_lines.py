"""The Delta table `commission_lines`: one row per gift-card sale with its discount and commission
(`commissions`), partitioned by the day of the sale. Computing a day overwrites its partition, so a re-run
(or a run after a rule changed) replaces the day's lines and adds none twice. Tiers and monthly caps count
the month's earlier days: compute the days of a month in order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl
from deltalake import DeltaTable, write_deltalake
from sqlalchemy import select

from ops_pipeline.db.schema import gc_assignments, gc_programs
from ops_pipeline.errors import InvalidInput
from ops_pipeline.giftcards import commissions
from ops_pipeline.lake.tables import COMMISSION_LINES, VOUCHER_EVENTS
from ops_pipeline.workspace import Workspace

TABLE = COMMISSION_LINES.name
# A sale: a voucher handed to its holder, at issue (issued straight to a distributor) or later.
_SALES = f"""
SELECT DISTINCT ON (event_id) event_id AS sale_id, voucher_id, holder_id AS party_id, program_id, currency,
       event_at AS sold_at, face_value_minor, price_paid_minor, event_date AS sale_date
FROM lake_{VOUCHER_EVENTS.name}
WHERE event_date BETWEEN $first AND $last AND to_status = 'distributed' AND coalesce(from_status, 'issued') = 'issued'
      AND holder_id IS NOT NULL
"""


@dataclass(frozen=True)
class Computed:
    first: date
    last: date
    sales: int
    commission_minor: int
    discount_minor: int


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def read_sales(ws: Workspace, first: date, last: date) -> pl.DataFrame:
    with ws.lake.connect(VOUCHER_EVENTS.name) as con:
        return con.sql(_SALES, params={"first": first, "last": last}).pl()


def load_book(ws: Workspace, first: date, last: date) -> commissions.Book:
    """The terms of sales from `first` to `last`: every program, the assignments in force in that span."""
    t = gc_assignments.c
    with ws.read_engine.connect() as conn:
        programs = conn.execute(select(gc_programs)).all()
        in_span = conn.execute(select(gc_assignments).where(t.starts_on <= last,
                                                            t.ends_on.is_(None) | (t.ends_on >= first))).all()
    return commissions.Book(programs, in_span)


def _prior(ws: Workspace, day: date) -> pl.DataFrame:
    """The month's lines before `day`, summed per distributor, program and rule."""
    with ws.lake.connect(TABLE) as con:
        return con.sql(f"""
            SELECT party_id, program_id, rule_key, count(*)::BIGINT AS sales,
                   sum(face_value_minor)::BIGINT AS face_value_minor,
                   sum(commission_minor)::BIGINT AS commission_minor
            FROM lake_{TABLE} WHERE sale_date >= $first AND sale_date < $day GROUP BY ALL""",
                       params={"first": month_start(day), "day": day}).pl()


def compute_days(ws: Workspace, first: date, last: date) -> Computed:
    """Compute the lines of the sales from `first` to `last` (one month at most) in one pass, and replace
    those days' partitions with them in one commit."""
    if month_start(first) != month_start(last) or last < first:
        raise InvalidInput(f"last: {first}..{last} is not a span within one month")
    sales = read_sales(ws, first, last)
    book = load_book(ws, first, last)
    terms = {(party, program, day): t for party, program, day in
             sales.select("party_id", "program_id", "sale_date").unique().iter_rows()
             if (t := book.terms(party, program, day)) is not None}
    lines = commissions.compute(sales, commissions.terms_frames(terms), _prior(ws, first))
    write_days(ws, first, last, lines)
    return Computed(first, last, len(lines), int(lines["commission_minor"].sum()),
                    int(lines["discount_minor"].sum()))


def compute_day(ws: Workspace, day: date) -> Computed:
    return compute_days(ws, day, day)


def write_days(ws: Workspace, first: date, last: date, lines: pl.DataFrame) -> None:
    """Replace the partitions from `first` to `last` with `lines` in one commit."""
    data = lines.select(COMMISSION_LINES.schema.names).to_arrow().cast(COMMISSION_LINES.schema)
    with ws.lock(TABLE):
        ws.lake.ensure(COMMISSION_LINES)
        table = DeltaTable(ws.lake.table_uri(TABLE), storage_options=ws.lake.storage_options)
        write_deltalake(table, data, mode="overwrite",
                        predicate=f"sale_date >= '{first.isoformat()}' AND sale_date <= '{last.isoformat()}'")


def month_totals(ws: Workspace, month: date) -> pl.DataFrame:
    """The month's lines summed per distributor, program, currency, rule and face value (see
    `commissions.aggregate`)."""
    with ws.lake.connect(TABLE) as con:
        return con.sql(f"""
            SELECT party_id, program_id, currency, rule_key, face_value_minor, count(*)::BIGINT AS sales,
                   any_value(terms) AS terms, sum(price_paid_minor)::BIGINT AS price_paid_minor,
                   sum(discount_minor)::BIGINT AS discount_minor, sum(commission_minor)::BIGINT AS commission_minor
            FROM lake_{TABLE} WHERE sale_date >= $first AND sale_date < $next GROUP BY ALL""",
                       params={"first": month_start(month), "next": next_month(month)}).pl()


def month_lines(ws: Workspace, month: date, columns: str = "*", grouped: bool = False) -> pl.DataFrame:
    """The lines of the month of `month` (`columns` of them; `grouped`: aggregates grouped by the others)."""
    with ws.lake.connect(TABLE) as con:
        return con.sql(f"SELECT {columns} FROM lake_{TABLE} WHERE sale_date >= $first AND sale_date < $next"
                       + (" GROUP BY ALL" if grouped else ""),
                       params={"first": month_start(month), "next": next_month(month)}).pl()


def unmatched_sales(ws: Workspace, day: date) -> int:
    """Sales of `day` with no commission line (the asset check: every sold voucher has a line)."""
    with ws.lake.connect(VOUCHER_EVENTS.name, TABLE) as con:
        return con.execute(f"""
            SELECT count(*) FROM ({_SALES}) s
            WHERE NOT EXISTS (SELECT 1 FROM lake_{TABLE} l
                              WHERE l.sale_date = $first AND l.sale_id = s.sale_id)""",
                           {"first": day, "last": day}).fetchone()[0]
