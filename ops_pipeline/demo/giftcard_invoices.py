"""The demo's month of commissions and invoices: the commission and discount of every voucher sold this
month (the daily `commission_lines`), then the month closed as on the first day of the next: one invoice
per distributor and customer (numbered without gaps; HTML, PDF and XLSX under OPS_HOME/invoices/), two of
them paid by bank transfer (one in full, one in part) as the bank's statement of our collections account
shows, matched to the invoices by their number, and the aging of what is left.

The month is closed ahead of the calendar (issued on the first of next month) so the demo can show it
today; a real month is invoiced by the monthly `giftcard_invoices` asset once it is over. Running it again
issues, writes and matches nothing twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from ops_pipeline.giftcards import commission_lines, invoice_files, invoice_payments, invoices
from ops_pipeline.money import to_major
from ops_pipeline.partners.statements import Line, mt940
from ops_pipeline.statements.intake import load_statement
from ops_pipeline.workspace import Workspace

if TYPE_CHECKING:
    from ops_pipeline.demo.giftcards import GiftCardWorld

ACTOR = "demo-meera"  # finance
COLLECTIONS = "OURBANK-COLLECTIONS-INR"


def run_invoices(ws: Workspace, world: GiftCardWorld, echo: Callable[[str], None]) -> None:
    """Commissions of the month so far, its invoices as on the next month's first day, two payments, aging."""
    month, today = world.business_month, datetime.now(ws.settings.tz).date()
    done = commission_lines.compute_days(ws, month, today)
    echo(f"Commissions {month:%Y-%m} (to {today}): {done.sales:,} sales, commission "
         f"{to_major(done.commission_minor, 'INR')} INR, "
         f"discount given {to_major(done.discount_minor, 'INR')} INR")
    close = commission_lines.next_month(month)
    issued = invoices.issue_month(ws, month, ACTOR, on=close)
    files = invoice_files.write_month(ws, month)
    month_invoices = invoices.list_invoices(ws, month=month, limit=100)
    echo(f"  month closed as on {close}: {len(issued)} invoices issued, files of {files} written "
         f"to {invoice_files.folder(ws, month)}")
    for i in month_invoices:
        echo(f"  {i.number}  {i.party_id:<10} {i.sales:>5} sales  {to_major(i.total_minor, i.currency):>10} "
             f"{i.currency}  due {i.due_on}")
    payers = [i for i in month_invoices if i.kind == "invoice"][:2]
    lines = [Line(f"{i.number} {i.party_id}", f"DEMO-COLL-{n}", i.total_minor // (n + 1), i.currency, "C",
                  f"payment {i.number}") for n, i in enumerate(payers)]
    loaded = load_statement(ws, mt940(lines, close, account=COLLECTIONS).encode(),
                            f"collections-{close}.mt940", ACTOR)
    matching = invoice_payments.match(ws, ACTOR)
    echo(f"  collections statement ({loaded.entries} credits): {matching.matched} payments matched")
    for i in invoices.list_invoices(ws, month=month, limit=100):
        if i.paid_minor:
            echo(f"  {i.number}: paid {to_major(i.paid_minor, i.currency)}, "
                 f"outstanding {to_major(i.outstanding_minor, i.currency)} {i.currency} ({i.status})")
    for row in invoice_payments.aging(ws, close):
        echo(f"  aging {row.bucket:>5} days: {row.invoices} invoices, "
             f"{to_major(row.outstanding_minor, row.currency)} {row.currency} outstanding")
