"""Ticketing over REST on SQLite and PostgreSQL: the issue's example flow, filters and cursor, bulk update,
group deletion, the audit endpoint, roles and the errors of bad payloads."""

import pytest
from fastapi.testclient import TestClient

from ops_pipeline.api.app import create_app
from ops_pipeline.auth import mint_token
from tests.test_api_jobs import error


@pytest.fixture
def client(ws):
    with TestClient(create_app(ws.settings)) as c:
        c.ws = ws
        yield c


def call(client, method, path, body=None, role="ops", sub="lead", **params):
    headers = {"Authorization": f"Bearer {mint_token(client.ws.settings, role, sub)}"}
    return client.request(method, f"/api{path}", json=body, params=params or None, headers=headers)


def ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json()


def setup_team(client, agents=("a1", "a2", "a3")):
    g = ok(call(client, "POST", "/groups", {"name": "KYC"}), 201)["groupId"]
    for a in agents:
        ok(call(client, "POST", "/agents", {"agentId": a, "name": a.upper(), "email": f"{a}@ops.example",
                                            "groupIds": [g]}), 201)
    return g


def test_the_issue_flow(client):
    g = ok(call(client, "POST", "/groups", {"name": "KYC"}), 201)
    assert (g["name"], g["activeStatus"]) == ("KYC", True)
    gid = g["groupId"]
    waiting = ok(call(client, "POST", "/tickets", {"groupId": gid, "userId": "U1", "priority": 2}), 201)
    assert (waiting["agentId"], waiting["status"], waiting["source"]) == (None, "open", "manual")
    a1 = ok(call(client, "POST", "/agents", {"agentId": "a1", "name": "Asha", "email": "asha@ops.example",
                                             "groupIds": [gid]}), 201)
    assert (a1["groupIds"], a1["activeStatus"], a1["ticketsAssignedToday"], a1["totalTicketsAssigned"]) == (
        [gid], True, 1, 1)  # took the waiting ticket
    ok(call(client, "POST", "/agents", {"agentId": "a2", "name": "Bo", "email": "bo@ops.example",
                                        "groupIds": [gid]}), 201)
    made = ok(call(client, "POST", "/tickets", {"groupId": gid, "userId": "U2", "priority": 1}), 201)
    assert made["agentId"] == "a2"
    off = ok(call(client, "PATCH", "/agents/a1", {"activeStatus": False}))
    assert off["activeStatus"] is False
    assert ok(call(client, "GET", f"/tickets/{waiting['id']}", role="analyst"))["agentId"] == "a2"
    resolved = ok(call(client, "PATCH", f"/tickets/{made['id']}", {"status": "resolved"}))
    assert resolved["status"] == "resolved" and resolved["resolvedAt"] is not None
    a2 = ok(call(client, "GET", "/agents/a2", role="analyst"))
    assert (a2["ticketsAssignedToday"], a2["ticketsResolvedToday"], a2["totalTicketsResolved"]) == (2, 1, 1)
    listed = ok(call(client, "GET", "/agents", role="analyst", groupId=gid, activeStatus="true"))["agents"]
    assert [a["agentId"] for a in listed] == ["a2"]
    bulk = ok(call(client, "POST", "/tickets/bulk", {"tickets": [{"groupId": gid, "userId": f"U{i}"}
                                                                 for i in range(3)]}), 201)["tickets"]
    assert [b["agentId"] for b in bulk] == ["a2"] * 3
    trail = ok(call(client, "GET", "/audit", role="analyst", entityType="ticket", entityId=str(waiting["id"])))
    assert [(e["action"], e["before"], e["after"].get("agentId")) for e in trail["entries"]] == [
        ("created", None, None), ("assigned", {"agentId": None}, "a1"), ("reassigned", {"agentId": "a1"}, "a2")]
    assert trail["entries"][1]["actor"] == "lead"


def test_filters_cursor_and_bulk_update(client):
    g = setup_team(client)
    ids = [ok(call(client, "POST", "/tickets", {"groupId": g, "userId": f"U{i}", "priority": 1 + i % 2,
                                               "source": "reconciliation" if i == 4 else "manual",
                                               "reference": "break-1" if i == 4 else None}), 201)["id"]
           for i in range(7)]
    pages, cursor = [], None
    while True:
        page = ok(call(client, "GET", "/tickets", role="analyst", limit=3, **({"cursor": cursor} if cursor else {})))
        pages.append([t["id"] for t in page["tickets"]])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == [ids[::-1][:3], ids[::-1][3:6], ids[::-1][6:]]
    by = {key: [t["id"] for t in ok(call(client, "GET", "/tickets", role="analyst", **params))["tickets"]]
          for key, params in {"a1": {"agentId": "a1"}, "p2": {"priority": 2, "groupId": g},
                              "recon": {"source": "reconciliation"}, "ref": {"reference": "break-1"},
                              "later": {"createdFrom": "2999-01-01T00:00:00Z"}}.items()}
    assert by == {"a1": [ids[6], ids[3], ids[0]], "p2": [ids[5], ids[3], ids[1]], "recon": [ids[4]],
                  "ref": [ids[4]], "later": []}
    moved = ok(call(client, "POST", "/tickets/bulk-update", {"ticketIds": ids[:3], "agentId": "a3"}))["tickets"]
    assert [(t["id"], t["agentId"]) for t in moved] == [(i, "a3") for i in ids[:3]]
    done = ok(call(client, "POST", "/tickets/bulk-update", {"ticketIds": ids[:2], "status": "resolved"}))
    assert {t["status"] for t in done["tickets"]} == {"resolved"}
    assert len(ok(call(client, "GET", "/tickets", role="analyst", status="open"))["tickets"]) == 5
    error(call(client, "POST", "/tickets/bulk-update", {"ticketIds": [ids[2], 99999], "status": "resolved"}),
          404, "NOT_FOUND", "ticket 99999")
    assert ok(call(client, "GET", f"/tickets/{ids[2]}"))["status"] == "open"  # all or none
    error(call(client, "GET", "/tickets", status="closed"), 400, "VALIDATION_ERROR", "status: 'closed'")
    error(call(client, "GET", "/tickets", cursor="x"), 400, "VALIDATION_ERROR", "cursor")


def test_group_delete_conflict_and_move(client):
    g = setup_team(client, ["a1"])
    other = ok(call(client, "POST", "/groups", {"name": "Risk"}), 201)["groupId"]
    tid = ok(call(client, "POST", "/tickets", {"groupId": g, "userId": "U1"}), 201)["id"]
    error(call(client, "DELETE", f"/groups/{g}"), 409, "GROUP_HAS_OPEN_TICKETS", "1 open tickets")
    error(call(client, "POST", "/groups", {"name": "Risk"}), 409, "DUPLICATE_GROUP", "name")
    assert ok(call(client, "DELETE", f"/groups/{g}", moveTo=other)) == {"groupId": g, "movedTickets": 1,
                                                                        "movedTo": other}
    moved = ok(call(client, "GET", f"/tickets/{tid}"))
    assert (moved["groupId"], moved["agentId"]) == (other, None)
    error(call(client, "GET", f"/groups/{g}"), 404, "NOT_FOUND", f"group {g}")
    assert [x["name"] for x in ok(call(client, "GET", "/groups", role="analyst"))["groups"]] == ["Risk"]
    assert ok(call(client, "DELETE", "/agents/a1")) == {"agentId": "a1", "reassignedTickets": 0}
    trail = ok(call(client, "GET", "/audit", entityType="group", entityId=str(g)))["entries"]
    assert [e["action"] for e in trail] == ["created", "deleted"]
    assert trail[1]["before"]["name"] == "KYC" and trail[1]["after"] is None


@pytest.mark.parametrize(("method", "path", "body", "status", "code", "fragment"), [
    ("POST", "/tickets", {"groupId": 1, "priority": 9}, 400, "VALIDATION_ERROR", "priority: 9"),
    ("POST", "/tickets", {"groupId": 999}, 400, "VALIDATION_ERROR", "groupId: no group 999"),
    ("POST", "/tickets", {"groupId": 1, "source": "email"}, 400, "VALIDATION_ERROR", "source: 'email'"),
    ("POST", "/tickets", {"priority": 1}, 422, "INVALID_BODY", "groupId"),
    ("POST", "/agents", {"agentId": "z", "name": "Z", "email": "nope", "groupIds": [1]}, 400,
     "VALIDATION_ERROR", "email: 'nope'"),
    ("POST", "/agents", {"agentId": "z", "name": "Z", "email": "z@x.io", "groupIds": []}, 400,
     "VALIDATION_ERROR", "groupIds"),
    ("POST", "/agents", {"agentId": "a1", "name": "Z", "email": "z@x.io", "groupIds": [1]}, 409,
     "DUPLICATE_AGENT", "agentId: agent 'a1'"),
    ("POST", "/groups", {"name": "  "}, 400, "VALIDATION_ERROR", "name: is required"),
    ("PATCH", "/agents/nobody", {"activeStatus": False}, 404, "NOT_FOUND", "agent 'nobody'"),
    ("PATCH", "/tickets/1", {}, 400, "VALIDATION_ERROR", "changes"),
    ("PATCH", "/tickets/1", {"agentId": "ghost"}, 409, "AGENT_UNAVAILABLE", "agentId: 'ghost'"),
])
def test_bad_requests_name_the_field(client, method, path, body, status, code, fragment):
    setup_team(client, ["a1"])
    ok(call(client, "POST", "/tickets", {"groupId": 1, "userId": "U1"}), 201)
    error(call(client, method, path, body), status, code, fragment)


def test_roles(client):
    g = setup_team(client, ["a1"])
    body = {"groupId": g, "userId": "U1"}
    error(client.post("/api/tickets", json=body), 401, "UNAUTHORIZED")
    error(call(client, "POST", "/tickets", body, role="analyst"), 403, "FORBIDDEN")
    error(call(client, "PATCH", "/agents/a1", {"activeStatus": False}, role="finance"), 403, "FORBIDDEN")
    error(call(client, "GET", "/tickets", role="merchant", sub="M1"), 403, "FORBIDDEN")
    error(client.get("/api/audit", params={"entityType": "ticket", "entityId": "1"}), 401, "UNAUTHORIZED")
    assert call(client, "GET", "/groups", role="analyst").status_code == 200


def test_an_unknown_or_mistyped_key_is_refused_not_dropped(client):
    group = setup_team(client)
    r = call(client, "POST", "/tickets", {"groupId": group, "userID": "U1"})
    assert r.status_code in (400, 422) and "userID" in r.json()["error"], r.text
    r = call(client, "PATCH", f"/groups/{group}", {"activeStatus": None})
    assert r.status_code == 400 and r.json()["error"].startswith("activeStatus:"), r.text
