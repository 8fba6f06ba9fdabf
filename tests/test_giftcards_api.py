"""The gift-card records over HTTP (SQLite and PostgreSQL): roles (ops writes; finance and analyst read),
masks in every answer, 400 naming the field, 404, 409, cursors, assignments and voucher transitions."""

import pytest
from fastapi.testclient import TestClient

from ops_pipeline.api.app import create_app
from ops_pipeline.auth import mint_token
from tests.giftcard_samples import ACCOUNT, DISTRIBUTOR, MALL, PROGRAM, TENANT, VPA

BASE = "/api/giftcards"


@pytest.fixture
def client(ws):
    with TestClient(create_app(ws.settings)) as c:
        c.ws = ws
        yield c


def call(client, method, path, role="ops", **kwargs):
    headers = {"Authorization": f"Bearer {mint_token(client.ws.settings, role, f'{role}:kim')}"}
    return client.request(method, BASE + path, headers=headers, **kwargs)


def made(response, status=201):
    assert response.status_code == status, response.text
    return response.json()


def camel_tenant() -> dict:
    bank = TENANT["bank_account"]
    return {**{k: v for k, v in TENANT.items() if k not in ("principal_id", "mall_id", "upi_vpas", "bank_account")},
            "principalId": TENANT["principal_id"], "mallId": TENANT["mall_id"], "upiVpas": TENANT["upi_vpas"],
            "bankAccount": {"accountHolder": bank["account_holder"], "accountNumber": bank["account_number"],
                            "ifsc": bank["ifsc"]}}


@pytest.fixture
def seeded(client):
    made(call(client, "POST", "/principals", json=MALL))
    made(call(client, "POST", "/principals", json=camel_tenant()))
    made(call(client, "POST", "/programs", json=PROGRAM))
    made(call(client, "POST", "/parties", json=DISTRIBUTOR))
    return client


def test_records_are_masked_in_every_answer(seeded):
    for role in ("ops", "finance", "analyst"):
        tenant = made(call(seeded, "GET", "/principals/P-CAFE-01", role), 200)
        assert tenant["upiVpas"] == ["be***@okhdfc", "be***@ybl"]
        assert tenant["bankAccount"]["accountNumber"] == "**********6789"
        assert tenant["contact"]["email"] != "asha@beanthere.example"
    listed = made(call(seeded, "GET", "/principals", "analyst", params={"kind": "tenant"}), 200)
    assert [p["principalId"] for p in listed["principals"]] == ["P-CAFE-01"] and listed["nextCursor"] is None
    body = call(seeded, "GET", "/principals", "finance").text
    assert VPA not in body and ACCOUNT not in body
    party = made(call(seeded, "GET", "/parties/D-GIFTLY", "finance"), 200)
    assert party["walletAccountId"] == "D-GIFTLY" and party["walletBalance"] == "0.00"
    assert party["bankAccount"]["accountNumber"] == "********2345"


def test_roles_ops_writes_others_read(seeded):
    for role in ("finance", "analyst"):
        assert call(seeded, "POST", "/principals", role, json={**MALL, "principalId": "M2"}).status_code == 403
        assert call(seeded, "PATCH", "/programs/GC-ORION-FESTIVE", role, json={"name": "X"}).status_code == 403
        assert call(seeded, "POST", "/vouchers", role, json={"programId": "GC-ORION-FESTIVE",
                                                             "faceValue": "500", "pricePaid": "480"}
                    ).status_code == 403
    assert call(seeded, "GET", "/programs", "merchant").status_code == 403
    assert seeded.get(BASE + "/programs").status_code == 401


def test_update_errors_and_versions(seeded):
    updated = made(call(seeded, "PATCH", "/principals/P-CAFE-01", json={"upiVpas": ["cafe.two@okaxis"]},
                        params={"expectedVersion": 1}), 200)
    assert updated["upiVpas"] == ["ca***@okaxis"] and updated["version"] == 2
    stale = call(seeded, "PATCH", "/principals/P-CAFE-01", json={"unit": "X"}, params={"expectedVersion": 1})
    assert stale.status_code == 409 and "version" in stale.json()["error"]
    bad = call(seeded, "PATCH", "/principals/P-CAFE-01", json={"upiVpas": ["nope"]})
    assert bad.status_code == 400 and bad.json()["error"].startswith("principal.upi_vpas[0]: 'nope'")
    missing = call(seeded, "GET", "/programs/GC-NONE", "analyst")
    assert missing.status_code == 404 and missing.json()["error"] == "program_id: no program 'GC-NONE'"
    dup = call(seeded, "POST", "/parties", json=DISTRIBUTOR)
    assert dup.status_code == 409 and dup.json()["code"] == "CONFLICT"
    no_name = call(seeded, "POST", "/principals", json={"principalId": "B-1"})
    assert no_name.status_code == 400 and no_name.json()["error"] == "principal.name: is required"
    restricted = made(call(seeded, "PUT", "/programs/GC-ORION-FESTIVE/restriction",
                           json={"state": "failed", "detail": "bank timeout"}), 200)
    assert restricted["restrictionState"] == "failed" and restricted["restrictionDetail"] == "bank timeout"
    assert call(seeded, "PUT", "/programs/GC-ORION-FESTIVE/restriction", json={"state": "x"}).status_code == 400


def test_assignments_and_vouchers_over_http(seeded):
    a = made(call(seeded, "POST", "/assignments", json={"partyId": "D-GIFTLY", "programId": "GC-ORION-FESTIVE",
                                                         "commissionPercent": "3", "startsOn": "2026-11-01"}))
    assert a["status"] == "active" and a["commissionPercent"] == "3"
    overlap = call(seeded, "POST", "/assignments", json={"partyId": "D-GIFTLY",
                                                         "programId": "GC-ORION-FESTIVE", "startsOn": "2026-11-05"})
    assert overlap.status_code == 409
    ended = made(call(seeded, "POST", f"/assignments/{a['id']}/unassign", json={"endsOn": "2026-11-30"}), 200)
    assert ended["status"] == "unassigned" and ended["endsOn"] == "2026-11-30"
    listed = made(call(seeded, "GET", "/assignments", "finance", params={"on": "2026-11-15"}), 200)
    assert [x["id"] for x in listed["assignments"]] == [a["id"]]
    assert made(call(seeded, "GET", "/assignments", "finance", params={"on": "2026-12-15"}), 200)[
        "assignments"] == []

    issued = made(call(seeded, "POST", "/vouchers", json={"programId": "GC-ORION-FESTIVE", "faceValue": "1000",
                                                          "pricePaid": "970.00", "count": 3,
                                                          "holderId": "D-GIFTLY"}))["vouchers"]
    assert [v["faceValue"] for v in issued] == ["1000.00"] * 3 and issued[0]["pricePaid"] == "970.00"
    vid = issued[0]["voucherId"]
    moved = made(call(seeded, "POST", f"/vouchers/{vid}/status", json={"status": "redeemed"}), 200)
    assert moved["status"] == "redeemed" and moved["redeemedAt"]
    refused = call(seeded, "POST", f"/vouchers/{vid}/status", json={"status": "distributed"})
    assert refused.status_code == 409 and "is redeemed; it cannot become distributed" in refused.json()["error"]
    assert call(seeded, "POST", "/vouchers/GV-NONE/status", json={"status": "redeemed"}).status_code == 404
    bad_face = call(seeded, "POST", "/vouchers", json={"programId": "GC-ORION-FESTIVE", "faceValue": "999",
                                                        "pricePaid": "1"})
    assert bad_face.status_code == 400 and bad_face.json()["error"].startswith("face_value: 999")
    page1 = made(call(seeded, "GET", "/vouchers", "analyst", params={"limit": 2}), 200)
    page2 = made(call(seeded, "GET", "/vouchers", "analyst", params={"cursor": page1["nextCursor"]}), 200)
    ids = [v["voucherId"] for v in page1["vouchers"] + page2["vouchers"]]
    assert ids == sorted(v["voucherId"] for v in issued) and page2["nextCursor"] is None
    assert made(call(seeded, "GET", f"/vouchers/{vid}", "finance"), 200)["status"] == "redeemed"
