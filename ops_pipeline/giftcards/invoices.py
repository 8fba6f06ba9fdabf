"""Monthly commission invoices to distributors, and credit notes.

One invoice per distributor, month and currency with sales: the month's commission lines per program, plus
the whole-month tier adjustments (`commissions.month_adjustments`). Numbers are gapless per series and year
(INV-2026-000001, CN-2026-000001): the counter row is incremented in the transaction that inserts the
document, so a rolled-back issue gives its number back. An issued document is never updated; a correction
is a credit note (a negative total that `corrects` the invoice). Issuing a month again issues nothing twice
(`period_key` is unique). Payment terms: due `PAYMENT_DAYS` after the issue date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from ops_pipeline import audit
from ops_pipeline.db.schema import gc_invoice_counters, gc_invoice_payments, gc_invoices
from ops_pipeline.errors import Conflict, InvalidInput, NotFound
from ops_pipeline.giftcards import commission_lines, commissions
from ops_pipeline.money import to_major, to_minor
from ops_pipeline.workspace import Workspace

PAYMENT_DAYS = 30
ENTITY = "gc_invoice"
PREFIX = {"invoice": "INV", "credit_note": "CN"}
_SUMS = ("sales", "face_value_minor", "discount_minor", "commission_minor", "adjustment_minor")


@dataclass(frozen=True)
class Invoice:
    """An issued invoice or credit note, with what has been paid and credited against it."""

    number: str
    kind: str
    party_id: str
    month: date
    currency: str
    sales: int
    face_value_minor: int
    discount_minor: int
    commission_minor: int
    adjustment_minor: int
    total_minor: int
    lines: list[dict[str, Any]]
    corrects: str | None
    reason: str | None
    issued_on: date
    due_on: date
    issued_by: str
    paid_minor: int = 0
    credited_minor: int = 0

    @property
    def outstanding_minor(self) -> int:
        if self.kind != "invoice":
            return 0
        return max(self.total_minor - self.credited_minor - self.paid_minor, 0)

    @property
    def status(self) -> str:
        if self.kind != "invoice":
            return "issued"
        if self.outstanding_minor == 0:
            return "paid" if self.paid_minor else "settled"
        return "partially_paid" if self.paid_minor else "open"


def next_number(conn: Connection, kind: str, year: int) -> str:
    """The next number of `kind` in `year`, in the caller's transaction (the counter row stays locked until it
    ends, so concurrent issuers wait and never share or skip a number)."""
    series = f"{PREFIX[kind]}-{year}"
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        dialect_insert(gc_invoice_counters)
        .values(series=series, last_number=0)
        .on_conflict_do_nothing(index_elements=["series"])
    )
    t = gc_invoice_counters.c
    last = conn.execute(
        update(gc_invoice_counters)
        .where(t.series == series)
        .values(last_number=t.last_number + 1)
        .returning(t.last_number)
    ).scalar_one()
    return f"{series}-{last:06d}"


def _insert(conn: Connection, values: dict[str, Any], actor: str) -> str:
    number = next_number(conn, values["kind"], values["issued_on"].year)
    conn.execute(
        insert(gc_invoices).values(number=number, issued_by=actor, issued_at=datetime.now(UTC), **values)
    )
    audit.record(
        conn,
        actor=actor,
        entity_type=ENTITY,
        entity_id=number,
        action=f"issue_{values['kind']}",
        reason=values.get("reason"),
        after={k: (v.isoformat() if isinstance(v, date) else v) for k, v in values.items() if k != "lines"},
    )
    return number


def month_summary(ws: Workspace, month: date) -> pl.DataFrame:
    """Per distributor, currency and program: the month's sales and amounts, with the tier adjustments."""
    totals = commission_lines.month_totals(ws, month)
    keys = ["party_id", "currency", "program_id"]
    sums = totals.group_by(keys).agg(
        pl.col("sales").sum(),
        (pl.col("face_value_minor") * pl.col("sales")).sum(),
        pl.col("discount_minor").sum(),
        pl.col("commission_minor").sum(),
    )
    adjustments = commissions.month_adjustments(totals).group_by(keys).agg(pl.col("adjustment_minor").sum())
    return (
        sums.join(adjustments, on=keys, how="left")
        .with_columns(pl.col("adjustment_minor").fill_null(0).cast(pl.Int64))
        .sort(keys)
    )


def issue_month(ws: Workspace, month: date, actor: str, on: date | None = None) -> list[str]:
    """Issue the invoices of `month` not issued yet (one per distributor and currency); their numbers."""
    month = commission_lines.month_start(commission_lines.check_day(month, "month"))
    on = commission_lines.check_day(on or datetime.now(ws.settings.tz).date(), "issued_on")
    if on < commission_lines.next_month(month):
        raise InvalidInput(
            f"month: {month:%Y-%m} is not over on {on}; invoice it from {commission_lines.next_month(month)}"
        )
    summary = month_summary(ws, month)
    with ws.read_engine.connect() as conn:
        issued = set(
            conn.execute(
                select(gc_invoices.c.period_key).where(
                    gc_invoices.c.kind == "invoice", gc_invoices.c.month == month
                )
            ).scalars()
        )
    numbers = []
    for (party_id, currency), rows in summary.group_by(["party_id", "currency"], maintain_order=True):
        period_key = f"{party_id}/{month:%Y-%m}/{currency}"
        if period_key in issued:
            continue
        lines = rows.drop("party_id", "currency").to_dicts()
        totals = {k: sum(line[k] for line in lines) for k in _SUMS}
        values = dict(
            kind="invoice",
            party_id=party_id,
            month=month,
            currency=currency,
            period_key=period_key,
            **totals,
            total_minor=totals["commission_minor"] + totals["adjustment_minor"],
            lines=lines,
            issued_on=on,
            due_on=on + timedelta(days=PAYMENT_DAYS),
        )
        try:
            with ws.engine.begin() as conn:
                numbers.append(_insert(conn, values, actor))
        except IntegrityError:  # another issuer took this period first; its number was not spent here
            continue
    return numbers


def credit_note(
    ws: Workspace, number: str, amount: str | Decimal, reason: str, actor: str, on: date | None = None
) -> Invoice:
    """Credit `amount` (major units) of invoice `number`: Conflict past what is left to credit."""
    if not reason or not reason.strip():
        raise InvalidInput("reason: a credit note needs a reason")
    on = commission_lines.check_day(on or datetime.now(ws.settings.tz).date(), "issued_on")
    with ws.engine.begin() as conn:
        invoice = _row(conn, number, lock=True)
        if invoice.kind != "invoice":
            raise Conflict(f"number: {number} is a {invoice.kind}; only an invoice can be credited")
        minor = to_minor(amount, invoice.currency, "amount", allow_zero=False)
        credited = -_credited(conn, [number]).get(number, 0)
        if minor > invoice.total_minor - credited:
            raise Conflict(
                f"amount: {amount} {invoice.currency} is more than the "
                f"{invoice.total_minor - credited} minor units left to credit on {number}"
            )
        values = dict(
            kind="credit_note",
            party_id=invoice.party_id,
            month=invoice.month,
            currency=invoice.currency,
            period_key=None,
            sales=0,
            face_value_minor=0,
            discount_minor=0,
            commission_minor=-minor,
            adjustment_minor=0,
            total_minor=-minor,
            lines=[],
            corrects=number,
            reason=reason,
            issued_on=on,
            due_on=on,
        )
        note = _insert(conn, values, actor)
    return get(ws, note)


def _row(conn: Connection, number: str, lock: bool = False) -> Any:
    query = select(gc_invoices).where(gc_invoices.c.number == number)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"number: no invoice {number!r}")
    return row


def _credited(conn: Connection, numbers: list[str]) -> dict[str, int]:
    t = gc_invoices.c
    return dict(
        conn.execute(
            select(t.corrects, func.sum(t.total_minor)).where(t.corrects.in_(numbers)).group_by(t.corrects)
        ).all()
    )


def _paid(conn: Connection, numbers: list[str]) -> dict[str, int]:
    t = gc_invoice_payments.c
    return dict(
        conn.execute(
            select(t.invoice_number, func.sum(t.amount_minor))
            .where(t.invoice_number.in_(numbers))
            .group_by(t.invoice_number)
        ).all()
    )


def _invoices(conn: Connection, rows: list[Any]) -> list[Invoice]:
    numbers = [r.number for r in rows]
    paid, credited = _paid(conn, numbers), _credited(conn, numbers)
    fields = set(Invoice.__dataclass_fields__)
    return [
        Invoice(
            **{k: v for k, v in r._mapping.items() if k in fields},
            paid_minor=int(paid.get(r.number, 0)),
            credited_minor=-int(credited.get(r.number, 0)),
        )
        for r in rows
    ]


def get(ws: Workspace, number: str) -> Invoice:
    with ws.read_engine.connect() as conn:
        return _invoices(conn, [_row(conn, number)])[0]


def list_invoices(
    ws: Workspace,
    *,
    month: date | None = None,
    party_id: str | None = None,
    kind: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[Invoice]:
    """Invoices and credit notes in number order after `after`, filtered."""
    t = gc_invoices.c
    query = select(gc_invoices).order_by(t.number).limit(limit)
    for column, value in (
        (t.month, month and commission_lines.month_start(month)),
        (t.party_id, party_id),
        (t.kind, kind),
    ):
        if value is not None:
            query = query.where(column == value)
    if after is not None:
        query = query.where(t.number > after)
    with ws.read_engine.connect() as conn:
        return _invoices(conn, conn.execute(query).all())


def open_invoices(conn: Connection) -> list[Invoice]:
    """Invoices with something left to pay, oldest first."""
    rows = conn.execute(
        select(gc_invoices)
        .where(gc_invoices.c.kind == "invoice")
        .order_by(gc_invoices.c.issued_on, gc_invoices.c.number)
    ).all()
    return [i for i in _invoices(conn, rows) if i.outstanding_minor > 0]


def untied(ws: Workspace, month: date) -> list[dict[str, Any]]:
    """Where the month's commission lines and its invoices disagree (the asset check): per distributor and
    currency, the lines' (sales, commission) against the invoice's (None: no lines, or not invoiced)."""
    lines = {
        (p, c): (n, amount)
        for p, c, n, amount in commission_lines.month_lines(
            ws, month, "party_id, currency, count(*), sum(commission_minor)::BIGINT", grouped=True
        ).iter_rows()
    }
    billed = {
        (i.party_id, i.currency): (i.sales, i.commission_minor)
        for i in list_invoices(ws, month=month, kind="invoice", limit=1_000_000)
    }
    return [
        {"party_id": key[0], "currency": key[1], "lines": lines.get(key), "invoice": billed.get(key)}
        for key in sorted(set(lines) | set(billed))
        if lines.get(key) != billed.get(key)
    ]


def view(invoice: Invoice) -> dict[str, Any]:
    """An invoice as the API and the CLI show it: amounts in major units as exact decimal text."""
    amounts = {
        name.removesuffix("_minor"): str(to_major(getattr(invoice, name), invoice.currency))
        for name in (
            "face_value_minor",
            "discount_minor",
            "commission_minor",
            "adjustment_minor",
            "total_minor",
            "paid_minor",
            "credited_minor",
            "outstanding_minor",
        )
    }
    lines = [
        {
            "program_id": line["program_id"],
            "sales": line["sales"],
            **{
                k.removesuffix("_minor"): str(to_major(line[k], invoice.currency))
                for k in ("face_value_minor", "discount_minor", "commission_minor", "adjustment_minor")
            },
        }
        for line in invoice.lines
    ]
    return {
        "number": invoice.number,
        "kind": invoice.kind,
        "status": invoice.status,
        "party_id": invoice.party_id,
        "month": f"{invoice.month:%Y-%m}",
        "currency": invoice.currency,
        "sales": invoice.sales,
        **amounts,
        "lines": lines,
        "corrects": invoice.corrects,
        "reason": invoice.reason,
        "issued_on": invoice.issued_on.isoformat(),
        "due_on": invoice.due_on.isoformat(),
        "issued_by": invoice.issued_by,
    }


def parse_month(text: str, field: str = "month") -> date:
    """'YYYY-MM' (or a day of the month) as the month's first day; InvalidInput naming `field` otherwise."""
    try:
        return date.fromisoformat(f"{text}-01" if len(text) == 7 else text).replace(day=1)
    except (TypeError, ValueError):
        raise InvalidInput(f"{field}: {text!r} is not a month (YYYY-MM)") from None
