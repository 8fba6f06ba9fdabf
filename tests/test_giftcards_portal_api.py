"""Portal reconciliation over HTTP (SQLite and PostgreSQL): mappings (ops write, analyst read, 400 naming the
field), an export uploaded as multipart (201, then 200 for the same file), the run of a date and its rows,
breaks and quarantined lines."""

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from ops_pipeline.api.app import create_app
from tests.portal_samples import PRINCIPAL, export_csv, seed_portal
from tests.test_giftcards_api import call, made


@pytest.fixture
def client(ws):
    ws.dates = seed_portal(ws)
    with TestClient(create_app(ws.settings)) as c:
        c.ws = ws
        yield c


def test_mappings_uploads_and_the_recon_of_a_date(client):
    mall = {"principalId": "MALL-ORION", "format": "xlsx", "dateFormat": "%Y-%m-%d",
            "columns": {"voucherId": "Voucher", "faceValue": "Amount", "status": "Status", "expiry": "Expiry"}}
    assert call(client, "POST", "/portal-mappings", "analyst", json=mall).status_code == 403
    created = made(call(client, "POST", "/portal-mappings", json=mall))
    assert created["columns"]["faceValue"] == "Amount" and created["version"] == 1
    bad = call(client, "POST", "/portal-mappings", json={**mall, "principalId": "X", "format": "pdf"})
    assert bad.status_code == 400 and "format" in bad.json()["error"]
    changed = made(call(client, "PATCH", "/portal-mappings/MALL-ORION", json={"decimalSeparator": ","},
                        params={"expectedVersion": 1}), 200)
    assert changed["decimalSeparator"] == "," and changed["version"] == 2
    listed = made(call(client, "GET", "/portal-mappings", "analyst"), 200)
    assert [m["principalId"] for m in listed["mappings"]] == ["MALL-ORION", PRINCIPAL]

    day = datetime.now(client.ws.settings.tz).date()
    data = export_csv(client.ws, client.ws.dates)
    upload = made(call(client, "POST", f"/portal-exports/{PRINCIPAL}", files={"file": (f"cafe-{day}.csv", data)}))
    assert (upload["vouchers"], upload["quarantined"], upload["exportDate"]) == (6, 1, day.isoformat())
    again = made(call(client, "POST", f"/portal-exports/{PRINCIPAL}", files={"file": ("x.csv", data)}), 200)
    assert again["alreadyLoaded"] is True
    unmapped = call(client, "POST", "/portal-exports/P-NONE", files={"file": ("x.csv", data)})
    assert unmapped.status_code == 404 and unmapped.json()["error"] == "principal_id: no portal_mapping 'P-NONE'"
    lines = made(call(client, "GET", "/portal-quarantine", "finance",
                      params={"principalId": PRINCIPAL}), 200)["lines"]
    assert [(q["rowNumber"], q["reason"][:40]) for q in lines] == [(8, "face_value: '5OO,00' (column 'Value') is")]

    run = made(call(client, "POST", f"/portal-recon/{day}/run", json={"principalId": PRINCIPAL}), 200)
    assert run["counts"]["matched"] == 1 and run["counts"]["unmatchedInternal"] == 1
    shown = made(call(client, "GET", f"/portal-recon/{day}", "analyst"), 200)
    assert {(s["status"], s["rows"], s["oursMinor"], s["portalMinor"]) for s in shown["statuses"]} == {
        ("matched", 1, 50000, 50000), ("matched_with_difference", 3, 150000, 200000),
        ("unmatched_internal", 1, 50000, 0), ("unmatched_external", 2, 0, 100000)}
    assert len(shown["breaks"]) == 6 and shown["quarantined"] == 1
    assert {b["reason"] for b in shown["breaks"]} >= {
        "voucher GV-T4 is missing from the portal export of P-CAFE-01"}
    missing = call(client, "POST", "/portal-recon/2026-01-01/run", json={"principalId": PRINCIPAL})
    assert missing.status_code == 404
