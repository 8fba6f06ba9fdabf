"""The job queue over REST on SQLite and PostgreSQL: create (idempotent), queue with filters and cursor, one
job with history, approvals (four eyes), cancel/retry/complete, types, and the errors of bad payloads."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from ops_pipeline.api.app import create_app
from ops_pipeline.auth import mint_token
from ops_pipeline.jobqueue.jobtypes import job_types_catalog


@pytest.fixture
def client(ws):
    with TestClient(create_app(ws.settings)) as c:
        c.ws = ws
        yield c


def auth(client, role="ops", sub="alice"):
    return {"Authorization": f"Bearer {mint_token(client.ws.settings, role, sub)}"}


def create(client, body, role="ops", sub="alice"):
    return client.post("/api/job/create", json=body, headers=auth(client, role, sub))


def error(r, status, code, *fragments):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and body["correlationId"] == r.headers["X-Correlation-Id"]
    for f in fragments:
        assert f in body["error"], body["error"]
    return body


def test_create_is_201_and_idempotent_with_200(client):
    body = {"type": "manual", "attributes": {"title": "Call the bank"}, "priority": "High",
            "idempotency_key": "call-1"}
    first = create(client, body)
    assert first.status_code == 201, first.text
    job = first.json()
    assert (job["type"], job["state"], job["priority"], job["createdBy"], job["createdByKind"]) == (
        "manual", "Created", "High", "alice", "person")
    again = create(client, {**body, "priority": "Low"}, role="internal", sub="svc-billing")
    assert (again.status_code, again.json()["id"], again.json()["priority"]) == (200, job["id"], "High")
    svc = create(client, {"type": "manual", "attributes": {"title": "x"}}, role="internal", sub="svc-billing")
    assert svc.json()["createdByKind"] == "service"


@pytest.mark.parametrize(("body", "fragments"), [
    ({"type": "teleport", "attributes": {}}, ["type: 'teleport'", "manual"]),
    ({"type": "manual", "attributes": {}}, ["attributes.title"]),
    ({"type": "manual", "attributes": {"title": "t"}, "priority": "Urgent"}, ["priority: 'Urgent'", "High"]),
    ({"type": "manual", "attributes": {"title": "t"}, "expires_at": "2020-01-01T00:00:00Z"},
     ["expires_at: 2020-01-01T00:00:00+00:00 is not in the future"]),
])
def test_bad_payloads_are_400_naming_the_field(client, body, fragments):
    error(create(client, body), 400, "VALIDATION_ERROR", *fragments)


def test_roles_and_tokens(client):
    body = {"type": "manual", "attributes": {"title": "t"}}
    error(client.post("/api/job/create", json=body), 401, "UNAUTHORIZED")
    error(client.post("/api/job/create", json=body, headers={"Authorization": "Bearer nope"}), 401, "UNAUTHORIZED")
    expired = mint_token(client.ws.settings, "ops", "a", ttl_seconds=1)
    import time

    time.sleep(1.1)
    error(client.post("/api/job/create", json=body, headers={"Authorization": f"Bearer {expired}"}), 401,
          "UNAUTHORIZED", "expired")
    error(create(client, body, role="analyst"), 403, "FORBIDDEN")
    error(create(client, body, role="merchant", sub="M1"), 403, "FORBIDDEN")
    assert client.get("/api/job/queue", headers=auth(client, "analyst")).status_code == 200
    error(client.get("/api/job/queue", headers=auth(client, "finance")), 403, "FORBIDDEN")


def test_approval_four_eyes_reject_cancel_retry(client):
    principal = next(t["example"] for t in job_types_catalog() if t["type"] == "principal_onboarding")
    r = create(client, {"type": "principal_onboarding", "attributes": principal})
    job = r.json()
    assert (r.status_code, job["state"], job["needsApproval"]) == (201, "Awaiting Approval", True)
    assert principal["upi_vpas"][0] not in r.text  # masked in answers
    jid = job["id"]
    error(client.post(f"/api/job/{jid}/approve", headers=auth(client, "ops", "alice")), 403, "FOUR_EYES")
    error(client.post(f"/api/job/{jid}/approve", headers=auth(client, "internal", "svc")), 403, "FORBIDDEN")
    ok = client.post(f"/api/job/{jid}/approve", headers=auth(client, "ops", "bob"))
    assert (ok.status_code, ok.json()["state"], ok.json()["approvedBy"]) == (200, "Created", "bob")
    error(client.post(f"/api/job/{jid}/approve", headers=auth(client, "ops", "bob")), 409, "ILLEGAL_TRANSITION",
          "cannot approve: state is Created")
    cancelled = client.post(f"/api/job/{jid}/cancel", json={"reason": "duplicate"}, headers=auth(client))
    assert (cancelled.json()["state"], cancelled.json()["lastError"]) == ("Failed", "cancelled: duplicate")
    retried = client.post(f"/api/job/{jid}/retry", headers=auth(client, "internal", "svc"))
    assert (retried.status_code, retried.json()["state"]) == (200, "Created")
    other = create(client, {"type": "principal_onboarding", "attributes": principal}).json()
    error(client.post(f"/api/job/{other['id']}/reject", json={}, headers=auth(client, "ops", "bob")), 400,
          "VALIDATION_ERROR", "reason")
    rejected = client.post(f"/api/job/{other['id']}/reject", json={"reason": "KYC missing"},
                           headers=auth(client, "ops", "bob"))
    assert rejected.json()["lastError"] == "rejected: KYC missing"


def test_manual_job_completed_through_the_api_and_its_history(client):
    jid = create(client, {"type": "manual", "attributes": {"title": "Fix a VPA", "description": "by hand"}}).json()["id"]
    done = client.post(f"/api/job/{jid}/complete", json={"note": "done on the phone"}, headers=auth(client, "ops", "bob"))
    assert done.status_code == 200 and done.json()["state"] == "Completed"
    job = client.get(f"/api/job/{jid}", headers=auth(client, "analyst")).json()
    assert [(h["fromState"], h["toState"], h["actor"]) for h in job["history"]] == [
        (None, "Created", "alice"), ("Created", "In Progress", "bob"), ("In Progress", "Completed", "bob")]
    assert job["progress"]["note"] == "done on the phone"
    error(client.get("/api/job/999999", headers=auth(client)), 404, "NOT_FOUND", "job 999999")


def test_queue_filters_and_cursor(client):
    ids = [create(client, {"type": "manual", "attributes": {"title": f"t{i}"}, "priority": p}).json()["id"]
           for i, p in enumerate(["High", "Low", "High", "Medium", "High"])]
    h = auth(client, "analyst")
    high = client.get("/api/job/queue", params={"priority": "High"}, headers=h).json()
    assert [j["id"] for j in high["jobs"]] == [ids[4], ids[2], ids[0]]
    page1 = client.get("/api/job/queue", params={"limit": 2}, headers=h).json()
    page2 = client.get("/api/job/queue", params={"limit": 2, "cursor": page1["nextCursor"]}, headers=h).json()
    page3 = client.get("/api/job/queue", params={"limit": 2, "cursor": page2["nextCursor"]}, headers=h).json()
    assert [j["id"] for p in (page1, page2, page3) for j in p["jobs"]] == ids[::-1]
    assert page3["nextCursor"] is None
    since = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert client.get("/api/job/queue", params={"createdFrom": since}, headers=h).json()["jobs"] == []
    error(client.get("/api/job/queue", params={"state": "Done"}, headers=h), 400, "VALIDATION_ERROR", "state")
    error(client.get("/api/job/queue", params={"cursor": "abc"}, headers=h), 400, "VALIDATION_ERROR", "cursor")


def test_types_list_schemas_and_approval(client):
    types = {t["type"]: t for t in client.get("/api/job/types", headers=auth(client, "analyst")).json()}
    assert {"principal_onboarding", "gift_card_program_creation", "distributor_onboarding",
            "distributor_wallet_topup", "fund_transfer_to_principal", "voucher_restriction_push",
            "manual"} <= set(types)
    assert types["principal_onboarding"]["needsApproval"] is True
    assert types["manual"]["needsApproval"] is False
    assert "title" in types["manual"]["attributesSchema"]["required"]
    assert "postal_code" in types["principal_onboarding"]["attributesSchema"]["$defs"]["Address"]["properties"]
    assert types["principal_onboarding"]["sensitiveFields"][-4:] == ["contact.phone", "upi_vpas[]",
                                                                     "bank_account.account_number", "bank_account.ifsc"]


def test_depends_on_over_the_api(client):
    first = create(client, {"type": "manual", "attributes": {"title": "open the wallet"}}).json()
    then = create(client, {"type": "manual", "attributes": {"title": "top it up"}, "dependsOn": [first["id"]]})
    assert then.status_code == 201, then.text
    assert (then.json()["dependsOn"], then.json()["waitingFor"]) == ([first["id"]], 1)
    assert then.json()["history"][0]["reason"] == f"created, after job {first['id']}"
    error(create(client, {"type": "manual", "attributes": {"title": "t"}, "dependsOn": [999]}), 400,
          "VALIDATION_ERROR", "dependsOn: job 999 does not exist")
    for bad in ([2**64], ["1"], [True], [first["id"], first["id"]]):
        error(create(client, {"type": "manual", "attributes": {"title": "t"}, "dependsOn": bad}), 400,
              "VALIDATION_ERROR", "dependsOn")
    h = auth(client)
    assert client.post(f"/api/job/{first['id']}/cancel", json={"reason": "no wallet"}, headers=h).status_code == 200
    failed = client.get(f"/api/job/{then.json()['id']}", headers=h).json()
    assert (failed["state"], failed["lastError"]) == (
        "Failed", f"prerequisite job {first['id']} ended Failed: cancelled: no wallet")
    error(create(client, {"type": "manual", "attributes": {"title": "t"}, "dependsOn": [first["id"]]}), 409,
          "PREREQUISITE_ENDED", f"dependsOn: job {first['id']} ended Failed")
