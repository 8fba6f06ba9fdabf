"""The console's invoices page: the list by month, one invoice with its lines and files, a file opened with
the session; a missing invoice or file is a 404 page."""

from datetime import date

from ops_pipeline.giftcards import commission_lines, invoice_files, invoices
from tests.console import console_client, text_of
from tests.gcfin_samples import sell
from tests.giftcard_samples import seed


def test_invoices_pages(ws):
    seed(ws)
    sell(ws, date(2026, 11, 3), "D-GIFTLY", "GC-ORION-FESTIVE", [100000])
    commission_lines.compute_day(ws, date(2026, 11, 3))
    [number] = invoices.issue_month(ws, date(2026, 11, 1), "ops:asha", on=date(2026, 12, 1))
    invoice_files.write_month(ws, date(2026, 11, 1))
    with console_client(ws, "finance", "fin") as client:
        listed = text_of(client.get("/console/invoices?month=2026-11").text)
        assert f"{number} invoice D-GIFTLY 2026-11 30.00 INR 0.00 30.00 open 2026-12-31" in listed
        one = client.get(f"/console/invoices/{number}")
        assert one.status_code == 200 and "GC-ORION-FESTIVE 1 1000.00 0.00 30.00 0.00" in text_of(one.text)
        pdf = client.get(f"/console/invoices/{number}/files/pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert client.get(f"/console/invoices/{number}/files/doc").status_code == 404
    with console_client(ws, "analyst", "ann") as client:
        assert client.get("/console/invoices/INV-2026-000009").status_code == 404
