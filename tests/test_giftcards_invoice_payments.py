"""Invoice payments from bank statement credits: partial and full, refused ones left for ops, an entry paying
once; aging buckets; overdue reminders through the outbox once per invoice and level, audited."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from ops_pipeline import analytics, audit
from ops_pipeline.db.schema import outbox
from ops_pipeline.giftcards import commission_lines, finance_report, invoice_payments, invoices, kinds
from ops_pipeline.reports import build as reports
from tests.gcfin_samples import credit, sell
from tests.giftcard_samples import seed

DAY = date(2026, 11, 3)


@pytest.fixture
def invoice(ws):
    """INV-2026-000001 of D-GIFTLY for 3% of 2 x 1000.00 = 60.00 INR, issued 2026-12-01, due 2026-12-31."""
    seed(ws)
    sell(ws, DAY, "D-GIFTLY", "GC-ORION-FESTIVE", [100000, 100000])
    commission_lines.compute_day(ws, DAY)
    [number] = invoices.issue_month(ws, DAY, "ops:asha", on=date(2026, 12, 1))
    return number


def test_credits_pay_invoices_partially_then_fully(ws, invoice):
    credit(
        ws,
        "st-1",
        [
            (2000, f"PAY {invoice}", date(2026, 12, 5)),
            (999, "no reference", date(2026, 12, 5)),
            (5000, f"{invoice} again", date(2026, 12, 6)),
        ],
    )
    first = invoice_payments.match(ws, "finance:li")
    assert (first.matched, first.amount_minor) == (1, {"INR": 2000})
    assert [u["reason"] for u in first.unmatched] == [
        "5000 is more than the 4000 outstanding on INV-2026-000001"
    ]
    assert (invoices.get(ws, invoice).status, invoices.get(ws, invoice).outstanding_minor) == (
        "partially_paid",
        4000,
    )
    assert invoice_payments.match(ws, "finance:li").matched == 0  # an entry pays once
    credit(ws, "st-2", [(4000, f"Invoice {invoice}", date(2026, 12, 20))])
    assert invoice_payments.match(ws, "finance:li").matched == 1
    paid = invoices.get(ws, invoice)
    assert (paid.status, paid.paid_minor, paid.outstanding_minor) == ("paid", 6000, 0)
    with ws.engine.connect() as conn:
        trail = audit.history(conn, invoices.ENTITY, invoice)
    assert [t["after"]["outstanding_minor"] for t in trail if t["action"] == "payment"] == [4000, 0]


def test_aging_and_reminders_once_per_level(ws, invoice):
    assert [(a.bucket, a.outstanding_minor) for a in invoice_payments.aging(ws, date(2026, 12, 31))] == [
        ("0-30", 6000)
    ]
    assert invoice_payments.remind(ws, date(2026, 12, 31), "system") == []  # due today: not overdue
    assert invoice_payments.remind(ws, date(2027, 1, 1), "system") == [(invoice, 1)]
    assert invoice_payments.remind(ws, date(2027, 1, 15), "system") == []
    # the distributor gets a contact e-mail: the next reminder also goes by mail to it
    kinds.update(ws, kinds.PARTIES, "D-GIFTLY", {"contact": {"name": "Ravi", "email": "ravi@giftly.example",
                                                          "phone": "+919800000001"}},
                 "ops:asha")
    assert invoice_payments.remind(ws, date(2027, 3, 5), "system") == [(invoice, 3)]
    assert invoice_payments.remind(ws, date(2027, 3, 6), "system") == []
    assert [(a.bucket, a.invoices) for a in invoice_payments.aging(ws, date(2027, 3, 5))] == [(">90", 1)]
    with ws.engine.connect() as conn:
        sent = conn.execute(
            select(outbox.c.subject, outbox.c.payload, outbox.c.channel, outbox.c.recipient)
            .where(outbox.c.event == "giftcards.invoice_overdue")
            .order_by(outbox.c.id)
        ).all()
    assert [(s.payload["level"], s.channel, s.recipient) for s in sent] == [
        (1, "webhook", None), (3, "webhook", None), (3, "email", "ravi@giftly.example")]
    assert sent[0].subject == f"Reminder 1: invoice {invoice} of D-GIFTLY, 60.00 INR overdue 1 days"


def test_analyst_views_commissions_and_invoices(ws, invoice):
    credit(ws, "st-1", [(2500, f"PAY {invoice}", date(2026, 12, 5))])
    invoice_payments.match(ws, "finance:li")
    con = analytics.connect(ws, operational=True)
    con.execute("CREATE OR REPLACE TEMP MACRO business_today() AS DATE '2027-01-05'")
    assert con.sql("SELECT count(*), sum(commission_minor), sum(commission) FROM commissions").fetchall() == [
        (2, 6000, Decimal("60.0000"))
    ]
    assert con.sql(
        "SELECT number, total_minor, paid_minor, outstanding_minor, days_overdue FROM invoices"
    ).fetchall() == [(invoice, 6000, 2500, 3500, 5)]
    con.close()


def test_finance_report_section(ws, invoice):
    credit(ws, "st-1", [(2500, f"PAY {invoice}", date(2026, 12, 5))])
    invoice_payments.match(ws, "finance:li")
    [nov] = finance_report.section(ws, date(2026, 11, 1), date(2026, 11, 30))
    assert nov.rows == (("INR", 2, (6000, "INR"), (0, "INR"), (0, "INR"), (0, "INR"), (0, "INR")),)
    [jan] = finance_report.section(ws, date(2027, 1, 1), date(2027, 1, 31))
    assert jan.rows == (("INR", 0, (0, "INR"), (0, "INR"), (0, "INR"), (3500, "INR"), (3500, "INR")),)
    [dec] = finance_report.section(ws, date(2026, 12, 1), date(2026, 12, 31))
    assert dec.rows[0][3:] == ((6000, "INR"), (2500, "INR"), (3500, "INR"), (0, "INR"))
    built = reports.build_month(ws, "2026-12")
    html = next(p for p in built.files if p.suffix == ".html").read_text()
    assert "Gift-card commissions" in html and "35.00" in html
