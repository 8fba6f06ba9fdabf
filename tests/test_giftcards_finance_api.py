"""Gift-card commissions, invoices and payments over HTTP: ops computes, issues, credits and matches; finance
and analyst read invoices, files and aging but cannot write; 400 names the field; 404 for a missing file."""

from datetime import date

from fastapi.testclient import TestClient

from ops_pipeline.api.app import create_app
from ops_pipeline.auth import mint_token
from tests.gcfin_samples import credit, sell
from tests.giftcard_samples import seed


def test_roles_invoices_files_and_payments(ws):
    seed(ws)
    sell(ws, date(2026, 11, 3), "D-GIFTLY", "GC-ORION-FESTIVE", [100000, 100000])
    with TestClient(create_app(ws.settings)) as client:

        def call(method, path, role="ops", **kwargs):
            headers = {"Authorization": f"Bearer {mint_token(ws.settings, role, f'{role}:kim')}"}
            return client.request(method, "/api/giftcards" + path, headers=headers, **kwargs)

        assert (
            call("POST", "/commissions/compute", "finance", json={"first": "2026-11-03"}).status_code == 403
        )
        done = call("POST", "/commissions/compute", json={"first": "2026-11-01", "last": "2026-11-30"})
        assert done.json() == {
            "first": "2026-11-01",
            "last": "2026-11-30",
            "sales": 2,
            "commissionMinor": 6000,
            "discountMinor": 0,
        }
        bad = call("POST", "/commissions/compute", json={"first": "2026-11-30", "last": "2026-12-01"})
        assert bad.status_code == 400 and "last: 2026-11-30..2026-12-01 is not a span" in bad.text
        assert call("GET", "/commissions?month=2026-11", "analyst").json()["commissions"] == [
            {
                "partyId": "D-GIFTLY",
                "programId": "GC-ORION-FESTIVE",
                "currency": "INR",
                "sales": 2,
                "faceValue": "2000.00",
                "discount": "0.00",
                "commission": "60.00",
                "adjustment": "0.00",
            }
        ]
        assert call("POST", "/invoices", "finance", json={"month": "2026-11"}).status_code == 403
        issued = call("POST", "/invoices", json={"month": "2026-11", "issuedOn": "2026-12-01"}).json()
        assert issued == {"issued": ["INV-2026-000001"]}
        one = call("GET", "/invoices/INV-2026-000001", "finance").json()
        assert (one["total"], one["status"], one["dueOn"]) == ("60.00", "open", "2026-12-31")
        assert set(one["files"]) == {"html", "pdf", "xlsx"}
        pdf = call("GET", "/invoices/INV-2026-000001/files/pdf", "analyst")
        assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
        assert call("GET", "/invoices/INV-2026-000009", "finance").status_code == 404
        note = call(
            "POST", "/invoices/INV-2026-000001/credit-notes", json={"amount": "10.00", "reason": "promo"}
        )
        assert note.status_code == 201 and note.json()["number"] == "CN-2026-000001"
        credit(ws, "st-1", [(5000, "INV-2026-000001", date(2026, 12, 4))])
        assert call("POST", "/invoices/payments/match", "finance").status_code == 403
        assert call("POST", "/invoices/payments/match").json()["matched"] == 1
        listed = call("GET", "/invoices?month=2026-11&kind=invoice", "analyst").json()["invoices"]
        assert [(i["number"], i["status"], i["outstanding"]) for i in listed] == [
            ("INV-2026-000001", "paid", "0.00")
        ]
        assert call("GET", "/invoices/aging?on=2027-01-15", "finance").json()["aging"] == []
