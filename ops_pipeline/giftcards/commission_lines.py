"""The Delta table `commission_lines`: one row per gift-card sale with its discount and commission
(`commissions`), partitioned by the day of the sale. Computing a day overwrites its partition, so a re-run
(or a run after a rule changed) replaces the day's lines and adds none twice. Tiers and monthly caps count
the month's earlier days: compute the days of a month in order."""

from __future__ import annotations

import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl
from deltalake import DeltaTable, write_deltalake
from deltalake.transaction import AddAction
from sqlalchemy import select

from ops_pipeline.db.schema import gc_assignments, gc_programs
from ops_pipeline.errors import InvalidInput
from ops_pipeline.giftcards import commissions
from ops_pipeline.lake.tables import COMMISSION_LINES, VOUCHER_EVENTS
from ops_pipeline.workspace import Workspace

TABLE = COMMISSION_LINES.name
# A sale: a voucher handed to its holder, at issue (issued straight to a distributor) or later.
_SALES = f"""
SELECT DISTINCT ON (event_id) event_id AS sale_id
FROM lake_{VOUCHER_EVENTS.name}
WHERE event_date BETWEEN $first AND $last AND to_status = 'distributed'
      AND coalesce(from_status, 'issued') = 'issued' AND holder_id IS NOT NULL
"""


@dataclass(frozen=True)
class Computed:
    first: date
    last: date
    sales: int
    commission_minor: int
    discount_minor: int


FIRST_YEAR, LAST_YEAR = 2000, 2999  # business dates outside are typos (and 9999-12-31 + 1 day overflows)


def check_day(day: date, field: str) -> date:
    """`day`, or InvalidInput naming `field` when its year is outside FIRST_YEAR..LAST_YEAR."""
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise InvalidInput(f"{field}: {day} is not between {FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31")
    return day


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def read_sales(ws: Workspace, first: date, last: date) -> pl.DataFrame:
    """The sales from `first` to `last`, one per event id (an event published twice counts once)."""
    ws.lake.ensure(VOUCHER_EVENTS)
    sales = (
        pl.scan_delta(ws.lake.table_uri(VOUCHER_EVENTS.name), storage_options=ws.lake.storage_options or None)
        .filter(
            pl.col("event_date").is_between(first, last),
            pl.col("to_status") == "distributed",
            pl.col("from_status").fill_null("issued") == "issued",
            pl.col("holder_id").is_not_null(),
        )
        .select(
            sale_id="event_id",
            voucher_id="voucher_id",
            party_id="holder_id",
            program_id="program_id",
            currency="currency",
            sold_at="event_at",
            face_value_minor="face_value_minor",
            price_paid_minor="price_paid_minor",
            sale_date="event_date",
        )
        .collect()
    )
    # exact and cheap: only rows whose id hashes collide are compared by id
    twice = sales["sale_id"].hash(7).is_duplicated()
    if not twice.any():
        return sales
    return pl.concat([sales.filter(~twice), sales.filter(twice).unique(subset="sale_id", keep="first")])


def load_book(ws: Workspace, first: date, last: date) -> commissions.Book:
    """The terms of sales from `first` to `last`: every program, the assignments in force in that span."""
    t = gc_assignments.c
    with ws.read_engine.connect() as conn:
        programs = conn.execute(select(gc_programs)).all()
        in_span = conn.execute(
            select(gc_assignments).where(t.starts_on <= last, t.ends_on.is_(None) | (t.ends_on >= first))
        ).all()
    return commissions.Book(programs, in_span)


def _prior(ws: Workspace, day: date) -> pl.DataFrame:
    """The month's lines before `day`, summed per distributor, program and rule."""
    with ws.lake.connect(TABLE) as con:
        return con.sql(
            f"""
            SELECT party_id, program_id, rule_key, count(*)::BIGINT AS sales,
                   sum(face_value_minor)::BIGINT AS face_value_minor,
                   sum(commission_minor)::BIGINT AS commission_minor
            FROM lake_{TABLE} WHERE sale_date >= $first AND sale_date < $day GROUP BY ALL""",
            params={"first": month_start(day), "day": day},
        ).pl()


def compute_days(ws: Workspace, first: date, last: date) -> Computed:
    """Compute the lines of the sales from `first` to `last` (one month at most) in one pass, and replace
    those days' partitions with them in one commit."""
    check_day(first, "first")
    check_day(last, "last")
    if month_start(first) != month_start(last) or last < first:
        raise InvalidInput(f"last: {first}..{last} is not a span within one month")
    sales = read_sales(ws, first, last)
    book = load_book(ws, first, last)
    runs = [
        (party, program, *run)
        for party, program in sales.select("party_id", "program_id").unique().iter_rows()
        for run in book.runs(party, program, first, last)
    ]
    lines = commissions.compute(sales, commissions.terms_frames(runs), _prior(ws, first))
    write_days(ws, first, last, lines)
    return Computed(
        first, last, len(lines), int(lines["commission_minor"].sum()), int(lines["discount_minor"].sum())
    )


def compute_day(ws: Workspace, day: date) -> Computed:
    return compute_days(ws, day, day)


def write_days(ws: Workspace, first: date, last: date, lines: pl.DataFrame) -> None:
    """Replace the partitions from `first` to `last` with `lines` in one commit. On local disk polars writes
    one Parquet file per day (in threads, no Arrow conversion); object storage goes through deltalake."""
    schema = pl.from_arrow(COMMISSION_LINES.schema.empty_table()).schema
    # categoricals (rule_key, terms) stay so: Parquet keeps them dictionary-encoded strings
    lines = lines.select(COMMISSION_LINES.schema.names).cast(
        {k: v for k, v in schema.items() if lines.schema[k] != pl.Categorical})
    span = f"sale_date >= '{first.isoformat()}' AND sale_date <= '{last.isoformat()}'"
    with ws.lock(TABLE):
        ws.lake.ensure(COMMISSION_LINES)
        table = DeltaTable(ws.lake.table_uri(TABLE), storage_options=ws.lake.storage_options)
        if not ws.lake.is_local:  # deltalake cannot write polars categoricals (see STACK_NOTES)
            write_deltalake(table, lines.cast(schema).to_arrow(), mode="overwrite", predicate=span)
            return
        root = ws.lake.table_uri(TABLE).removeprefix("file://")
        days = lines.partition_by("sale_date", as_dict=True, include_key=False)
        with ThreadPoolExecutor(2) as pool:
            actions = list(pool.map(lambda item: _write_file(root, item[0][0], item[1]), days.items()))
        table.create_write_transaction(
            actions,
            mode="overwrite",
            schema=COMMISSION_LINES.schema,
            partition_by=["sale_date"],
            partition_filters=[("sale_date", ">=", first.isoformat()), ("sale_date", "<=", last.isoformat())],
        )


def _write_file(root: str, day: date, frame: pl.DataFrame) -> AddAction:
    folder = f"sale_date={day.isoformat()}"
    name = f"{folder}/part-00000-{uuid.uuid4()}-c000.lz4.parquet"
    os.makedirs(os.path.join(root, folder), exist_ok=True)
    path = os.path.join(root, name)
    frame.write_parquet(path, compression="lz4")
    stat = os.stat(path)
    return AddAction(
        path=name,
        size=stat.st_size,
        partition_values={"sale_date": day.isoformat()},
        modification_time=int(stat.st_mtime * 1000),
        data_change=True,
        stats=json.dumps({"numRecords": len(frame)}),
    )


def month_totals(ws: Workspace, month: date) -> pl.DataFrame:
    """The month's lines summed per distributor, program, currency, rule and face value (what invoices and
    `commissions.month_adjustments` need)."""
    with ws.lake.connect(TABLE) as con:
        return con.sql(
            f"""
            SELECT party_id, program_id, currency, rule_key, face_value_minor, count(*)::BIGINT AS sales,
                   any_value(terms) AS terms, sum(price_paid_minor)::BIGINT AS price_paid_minor,
                   sum(discount_minor)::BIGINT AS discount_minor,
                   sum(commission_minor)::BIGINT AS commission_minor
            FROM lake_{TABLE} WHERE sale_date >= $first AND sale_date < $next GROUP BY ALL""",
            params={"first": month_start(month), "next": next_month(month)},
        ).pl()


def month_lines(ws: Workspace, month: date, columns: str = "*", grouped: bool = False) -> pl.DataFrame:
    """The lines of the month of `month` (`columns` of them; `grouped`: aggregates grouped by the others)."""
    with ws.lake.connect(TABLE) as con:
        return con.sql(
            f"SELECT {columns} FROM lake_{TABLE} WHERE sale_date >= $first AND sale_date < $next"
            + (" GROUP BY ALL" if grouped else ""),
            params={"first": month_start(month), "next": next_month(month)},
        ).pl()


def unmatched_sales(ws: Workspace, day: date) -> int:
    """Sales of `day` with no commission line (the asset check: every sold voucher has a line)."""
    with ws.lake.connect(VOUCHER_EVENTS.name, TABLE) as con:
        return con.execute(
            f"""
            SELECT count(*) FROM ({_SALES}) s
            WHERE NOT EXISTS (SELECT 1 FROM lake_{TABLE} l
                              WHERE l.sale_date = $first AND l.sale_id = s.sale_id)""",
            {"first": day, "last": day},
        ).fetchone()[0]
