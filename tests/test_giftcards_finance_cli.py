"""`ops-pipeline invoices ...` as ops and finance run it: compute a month's commissions, issue its invoices
with their files, credit, match a payment, aging; errors as one line with exit 1."""

from datetime import date

from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings
from tests.gcfin_samples import credit, sell
from tests.giftcard_samples import seed
from tests.test_tickets_cli import run


def test_invoices_from_the_command_line(tmp_path):
    home = tmp_path / "home"
    ws = Workspace(make_settings(home))
    ws.init()
    seed(ws)
    sell(ws, date(2026, 11, 3), "D-GIFTLY", "GC-ORION-FESTIVE", [100000, 50000])
    assert run(home, "invoices", "compute", "2026-11-01", "2026-11-30") == (
        "2026-11-01..2026-11-30: 2 sales, commission 4,500 and discount 0 minor units\n"
    )
    assert run(home, "invoices", "commissions", "2026-11", "--format", "csv").splitlines()[1] == (
        "D-GIFTLY,GC-ORION-FESTIVE,INR,2,1500.00,0.00,45.00,0.00"
    )
    assert run(home, "invoices", "issue", "2026-11", "--on", "2026-11-20", code=1) == (
        "error: month: 2026-11 is not over on 2026-11-20; invoice it from 2026-12-01\n"
    )
    out = run(home, "invoices", "issue", "2026-11", "--on", "2026-12-01", "--actor", "li")
    assert out.splitlines()[0] == "1 invoices issued: INV-2026-000001 .. INV-2026-000001"
    assert sorted(p.name for p in (home / "invoices" / "2026-11").iterdir()) == [
        "INV-2026-000001.html",
        "INV-2026-000001.pdf",
        "INV-2026-000001.xlsx",
    ]
    assert run(home, "invoices", "credit", "INV-2026-000001", "5.00", "--reason", "goodwill") == (
        "CN-2026-000001: 5.00 INR credited on INV-2026-000001\n"
    )
    credit(ws, "st-1", [(2000, "INV-2026-000001", date(2026, 12, 5))])
    ws.close()
    assert run(home, "invoices", "match").startswith("1 payments matched (20.00 INR); 0 credits left for ops")
    listed = run(home, "invoices", "list", "--kind", "invoice", "--format", "csv").splitlines()
    assert (
        listed[1] == "INV-2026-000001,invoice,partially_paid,D-GIFTLY,2026-11,INR,2,45.00,20.00,20.00,"
        "2026-12-01,2026-12-31"
    )
    assert run(home, "invoices", "aging", "--on", "2027-01-10", "--format", "csv").splitlines()[1] == (
        "INR,31-60,1,20.00"
    )
    assert (
        run(home, "invoices", "remind", "--on", "2027-01-10")
        == "1 reminders sent\n  INV-2026-000001: level 1\n"
    )
    assert (
        run(home, "invoices", "show", "INV-2026-000009", code=1)
        == "error: number: no invoice 'INV-2026-000009'\n"
    )
