"""The gift-card commissions section of the finance reports (`reports/sections.py`): per currency, the
commissions earned by the sales of the period (lines, plus the whole-month adjustments of the invoices of
its months), invoiced (invoices issued in the period, less credit notes), paid (payments with a value date in
the period), and what of the invoices issued by its last day is unpaid now (outstanding) and was past due on
that day (overdue)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from ops_pipeline.db.schema import gc_invoice_payments, gc_invoices
from ops_pipeline.giftcards import commission_lines, invoices
from ops_pipeline.reports.model import Section
from ops_pipeline.workspace import Workspace

HEADER = ("Currency", "Sales", "Commission earned", "Invoiced", "Paid", "Outstanding", "Overdue")


def section(ws: Workspace, first: date, last: date) -> list[Section]:
    with ws.lake.connect(commission_lines.TABLE) as con:
        earned = {
            c: (n, amount)
            for c, n, amount in con.sql(
                "SELECT currency, count(*), sum(commission_minor)::BIGINT "
                f"FROM lake_{commission_lines.TABLE} WHERE sale_date BETWEEN $first AND $last GROUP BY ALL",
                params={"first": first, "last": last},
            ).fetchall()
        }
    t, p = gc_invoices.c, gc_invoice_payments.c
    with ws.read_engine.connect() as conn:

        def per_currency(currency, amount, when) -> dict[str, int]:
            return {
                c: int(v or 0)
                for c, v in conn.execute(
                    select(currency, func.sum(amount)).where(when).group_by(currency)
                ).all()
            }

        invoiced = per_currency(t.currency, t.total_minor, t.issued_on.between(first, last))
        adjusted = per_currency(t.currency, t.adjustment_minor, t.month.between(first.replace(day=1), last))
        paid = per_currency(p.currency, p.amount_minor, p.value_date.between(first, last))
        unpaid = [i for i in invoices.open_invoices(conn) if i.issued_on <= last]
    outstanding: dict[str, list[int]] = {}
    for i in unpaid:
        acc = outstanding.setdefault(i.currency, [0, 0])
        acc[0] += i.outstanding_minor
        acc[1] += i.outstanding_minor if i.due_on < last else 0
    rows = []
    for currency in sorted(set(earned) | set(invoiced) | set(paid) | set(outstanding)):
        sales, commission = earned.get(currency, (0, 0))
        rows.append(
            (
                currency,
                sales,
                (commission + adjusted.get(currency, 0), currency),
                (invoiced.get(currency, 0), currency),
                (paid.get(currency, 0), currency),
                (outstanding.get(currency, [0, 0])[0], currency),
                (outstanding.get(currency, [0, 0])[1], currency),
            )
        )
    return [
        Section(
            "giftcard_commissions",
            "Gift-card commissions",
            HEADER,
            tuple(rows),
            "Commission earned: the sales' lines plus the whole-month tier adjustments of the months' "
            "invoices. Outstanding: unpaid now, of the invoices issued by the period's last day; overdue: "
            "those of them past due on that day.",
        )
    ]
