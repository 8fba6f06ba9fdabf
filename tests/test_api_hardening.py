"""API hardening, one regression per defect class: ids past 64 bits, deep JSON, oversized and non-JSON bodies,
token claims of the wrong type, routes captured by a path parameter and 405's Allow, the spec's integer
userId, bounds in OpenAPI, offline /docs, and who reads what. Each refusal names the field."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import jwt
import pytest
from fastapi.testclient import TestClient

from ops_pipeline.api.app import create_app
from ops_pipeline.api.auth import TokenVerifier
from ops_pipeline.api.guard import MAX_BODY_BYTES, MAX_DEPTH
from ops_pipeline.api.models import MAX_ID
from ops_pipeline.auth import AuthError, mint_token
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.tickets import agents, groups
from tests.test_api_jobs import error

HUGE = "9" * 25  # past 64 bits: SQLite raised OverflowError (500) on it
CONFIG = "/business-profiles/business/B1/autofundout"


@pytest.fixture
def client(sqlite_ws):
    post_entries(sqlite_ws, [Entry("ADJUSTMENT", "a1", "M1", "EUR", 1000, "adjustment")], "test")
    group = groups.create_group(sqlite_ws, "lead", "KYC", True)["group_id"]
    agents.create_agent(sqlite_ws, "lead", "a1", "A1", "a1@ops.example", [group], True)
    with TestClient(create_app(sqlite_ws.settings)) as c:
        c.ws = sqlite_ws
        yield c


def headers(client, role="ops", sub="lead"):
    return {"Authorization": f"Bearer {mint_token(client.ws.settings, role, sub)}"}


def call(client, method, path, body=None, role="ops", **params):
    return client.request(method, path, json=body, params=params or None, headers=headers(client, role))


@pytest.mark.parametrize(("method", "path", "body", "params", "field"), [
    ("GET", f"/api/job/{HUGE}", None, {}, "job_id"),
    ("POST", f"/api/job/{HUGE}/approve", None, {}, "job_id"),
    ("GET", "/api/job/queue", None, {"cursor": HUGE}, "cursor"),
    ("GET", f"/api/tickets/{HUGE}", None, {}, "ticket_id"),
    ("PATCH", f"/api/tickets/{HUGE}", {"status": "resolved"}, {}, "ticket_id"),
    ("GET", "/api/tickets", None, {"cursor": HUGE}, "cursor"),
    ("GET", "/api/tickets", None, {"groupId": HUGE}, "groupId"),
    ("GET", "/api/agents", None, {"groupId": HUGE}, "groupId"),
    ("GET", f"/api/groups/{HUGE}", None, {}, "group_id"),
    ("DELETE", "/api/groups/1", None, {"moveTo": HUGE}, "moveTo"),
    ("POST", "/api/tickets", {"groupId": int(HUGE)}, {}, "groupId"),
    ("POST", "/api/tickets/bulk", {"tickets": [{"groupId": int(HUGE)}]}, {}, "tickets[0].groupId"),
    ("POST", "/api/tickets/bulk-update", {"ticketIds": [1, int(HUGE)], "status": "resolved"}, {},
     "ticketIds[1]"),
    ("POST", "/api/agents", {"agentId": "z", "name": "Z", "email": "z@x.io", "groupIds": [int(HUGE)]}, {},
     "groupIds[0]"),
    ("PATCH", "/api/agents/a1", {"groupIds": [int(HUGE)]}, {}, "groupIds[0]"),
])
def test_ids_past_64_bits_are_400_naming_the_field(client, method, path, body, params, field):
    body = error(call(client, method, path, body, **params), 400, "VALIDATION_ERROR")
    assert body["error"].startswith(f"{field}: "), body["error"]
    assert HUGE in body["error"] and str(MAX_ID) in body["error"]


def test_the_largest_id_is_a_plain_404_and_zero_is_refused(client):
    error(call(client, "GET", f"/api/job/{MAX_ID}"), 404, "NOT_FOUND")
    error(call(client, "GET", f"/api/tickets/{MAX_ID}"), 404, "NOT_FOUND")
    error(call(client, "GET", "/api/job/0"), 400, "VALIDATION_ERROR", "job_id: 0 is invalid")


def nested(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/job/create"), ("POST", "/api/tickets"), ("POST", "/api/tickets/bulk-update"),
    ("POST", "/api/groups"), ("PATCH", "/api/agents/a1"), ("POST", "/api/job/1/reject"),
    ("POST", CONFIG), ("PUT", CONFIG), ("POST", "/business-profiles/business/B1/cashout"),
])
def test_deeply_nested_json_is_400_on_every_route(client, method, path):
    for levels in (MAX_DEPTH + 1, 100_000):
        r = client.request(method, path, content=nested(levels), headers=headers(client) | {
            "Content-Type": "application/json"})
        error(r, 400, "VALIDATION_ERROR", f"body: arrays and objects nest deeper than {MAX_DEPTH} levels")


def test_nesting_is_measured_outside_strings_and_within_the_limit_passes(client):
    gid = call(client, "GET", "/api/groups").json()["groups"][0]["groupId"]
    brackets = "[{" * 500
    made = call(client, "POST", "/api/tickets", {"groupId": gid, "description": brackets})
    assert (made.status_code, made.json()["description"]) == (201, brackets)
    at_limit = b'{"groupId": %d, "description": ' % gid + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    r = client.post("/api/tickets", content=at_limit, headers=headers(client) | {"Content-Type": "application/json"})
    error(r, 422, "INVALID_BODY", "description: [[[[")  # read and refused for its type, not its depth


def test_a_body_over_the_limit_is_413(client):
    big = b'{"groupId": 1, "description": "' + b"x" * MAX_BODY_BYTES + b'"}'
    json_type = {"Content-Type": "application/json"}
    r = client.post("/api/tickets", content=big, headers=headers(client) | json_type)
    error(r, 413, "CONTENT_TOO_LARGE", f"body: larger than {MAX_BODY_BYTES} bytes")
    # Without Content-Length (chunked): counted while reading.
    chunks = (big[i:i + 65536] for i in range(0, len(big), 65536))
    r = client.post("/api/tickets", content=chunks, headers=headers(client) | json_type)
    error(r, 413, "CONTENT_TOO_LARGE", "body: larger than")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "application/jsonx"])
@pytest.mark.parametrize(("method", "path"), [("POST", "/api/tickets"), ("PUT", CONFIG), ("POST", CONFIG)])
def test_a_body_that_is_not_declared_json_is_415(client, content_type, method, path):
    sent = headers(client) | ({"Content-Type": content_type} if content_type else {})
    r = client.request(method, path, content=b'{"groupId": 1, "freqType": "D"}', headers=sent)
    error(r, 415, "UNSUPPORTED_MEDIA_TYPE", f"Content-Type: {content_type or 'none'!r} is not application/json")


def test_malformed_json_is_422_saying_so(client):
    r = client.post("/api/tickets", content=b'{"groupId": 1,', headers=headers(client) | {
        "Content-Type": "application/json"})
    error(r, 422, "INVALID_BODY", "body: is not valid JSON (Expecting property name")


def test_json_media_types_with_parameters_or_suffix_are_json(client):
    gid = call(client, "GET", "/api/groups").json()["groups"][0]["groupId"]
    for media in ("application/json; charset=utf-8", "application/merge-patch+json"):
        r = client.post("/api/tickets", content=f'{{"groupId": {gid}}}'.encode(),
                        headers=headers(client) | {"Content-Type": media})
        assert r.status_code == 201, r.text
    # A route without a body does not care what an empty request says it is.
    r = client.post("/api/job/1/approve", headers=headers(client) | {"Content-Type": "text/plain"})
    error(r, 404, "NOT_FOUND")


@pytest.fixture
def pg_client(ws):
    """On both databases: PostgreSQL cannot store a NUL character (psycopg raised ValueError: 500)."""
    with TestClient(create_app(ws.settings)) as c:
        c.ws = ws
        yield c


@pytest.mark.parametrize(("method", "path", "body", "params", "field"), [
    ("POST", "/api/groups", {"name": "a\u0000b"}, {}, "name"),
    ("POST", "/api/tickets/bulk", {"tickets": [{"groupId": 1}, {"groupId": 1, "userId": "U\u0000"}]}, {},
     "tickets[1].userId"),
    ("POST", "/api/job/create", {"type": "manual", "attributes": {"title": "\u0000"}}, {}, "attributes.title"),
    ("POST", "/api/job/create", {"type": "manual", "attributes": {"ti\u0000tle": "t"}}, {},
     "attributes.ti\\u0000tle"),
    ("GET", "/api/tickets", None, {"reference": "r\x00"}, "reference"),
    ("GET", "/api/audit", None, {"entityType": "ticket", "entityId": "\x00"}, "entityId"),
    ("GET", "/api/agents/a%00b", None, {}, "path"),
    ("GET", "/api/balances/M%001", None, {}, "path"),
    ("PUT", CONFIG, {"freqType": "D", "timezone": "Europe/\u0000"}, {}, "timezone"),
])
def test_a_nul_character_is_400_naming_where(pg_client, method, path, body, params, field):
    r = call(pg_client, method, path, body, **params)
    error(r, 400, "VALIDATION_ERROR", f"{field}: contains a NUL character (U+0000), which no field takes")


def test_an_escaped_backslash_before_u0000_is_text_not_nul(client):
    gid = call(client, "GET", "/api/groups").json()["groups"][0]["groupId"]
    made = call(client, "POST", "/api/tickets", {"groupId": gid, "description": "C:\\u0000 is a path"})
    assert (made.status_code, made.json()["description"]) == (201, "C:\\u0000 is a path")


def token_with(client, **claims) -> str:
    now = datetime.now(UTC)
    base = {"sub": "alice", "role": "ops", "iat": int(now.timestamp()), "exp": int(now.timestamp()) + 300}
    return jwt.encode({k: v for k, v in (base | claims).items() if v is not ...}, client.ws.settings.jwt_secret,
                      "HS256")


@pytest.mark.parametrize(("claims", "fragment"), [
    ({"exp": "9999999999"}, "claim 'exp' is not a number of seconds: '9999999999'"),
    ({"exp": True}, "claim 'exp' is not a number of seconds: True"),
    ({"exp": float("inf")}, "claim 'exp' is not a number of seconds: inf"),
    ({"exp": float("nan")}, "claim 'exp' is not a number of seconds: nan"),
    ({"exp": [1]}, "claim 'exp' is not a number of seconds: [1]"),
    ({"exp": 10**400}, "claim 'exp' is not a number of seconds: 1000000000"),
    ({"iat": "yesterday"}, "claim 'iat' is not a number of seconds: 'yesterday'"),
    ({"nbf": "0"}, "claim 'nbf' is not a number of seconds: '0'"),
    ({"nbf": 4_000_000_000}, "not valid yet"),
    ({"sub": ""}, "claim 'sub' is not a string of 1 to 128 characters: ''"),
    ({"sub": "   "}, "claim 'sub'"),
    ({"sub": 123}, "token: invalid (Subject must be a string)"),  # PyJWT's own check
    ({"sub": "x" * 129}, "claim 'sub'"),
    ({"role": ["ops"]}, "role ['ops'] is not one of"),
    ({"role": ...}, "role None is not one of"),
])
def test_token_claims_of_the_wrong_type_are_401_at_every_use(client, claims, fragment):
    token = token_with(client, **claims)
    for _ in range(3):  # a string exp was accepted once, then 500 on each use (float compared with str)
        r = client.get("/api/balances/M1", headers={"Authorization": f"Bearer {token}"})
        body = error(r, 401, "UNAUTHORIZED", fragment)
        assert body["error"].startswith("token: ")
    verify = TokenVerifier(client.ws.settings)
    for _ in range(2):
        with pytest.raises(AuthError, match="token: "):
            verify(token)


def test_well_typed_float_times_pass(client):
    now = datetime.now(UTC).timestamp()
    token = token_with(client, iat=now - 1.5, nbf=now - 1.5, exp=now + 60.5)
    assert client.get("/api/balances/M1", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PATCH", "/api/tickets/bulk", "POST"),
    ("GET", "/api/tickets/bulk-update", "POST"),
    ("PUT", "/api/tickets/1", "GET, PATCH, DELETE"),
    ("POST", "/api/groups/1", "GET, PATCH, DELETE"),
    ("OPTIONS", "/api/job/create", "POST"),
    ("DELETE", "/api/job/queue", "GET"),
    ("PATCH", CONFIG, "GET, POST, PUT"),
])
def test_405_lists_every_method_of_the_path(client, method, path, allowed):
    r = call(client, method, path)
    error(r, 405, "METHOD_NOT_ALLOWED", f"allowed: {allowed}")
    assert r.headers["Allow"] == allowed


def test_a_word_where_an_id_goes_is_not_found(client):
    """Typed path ids: /tickets/bulk is never read as ticket 'bulk'."""
    error(call(client, "GET", "/api/tickets/oops"), 404, "NOT_FOUND")
    error(call(client, "PATCH", "/api/groups/KYC", {"name": "x"}), 404, "NOT_FOUND")


def test_create_ticket_takes_the_spec_integer_user_id(client):
    gid = call(client, "GET", "/api/groups").json()["groups"][0]["groupId"]
    made = call(client, "POST", "/api/tickets", {"groupId": gid, "userId": 1001})
    assert (made.status_code, made.json()["userId"]) == (201, "1001")
    bulk = call(client, "POST", "/api/tickets/bulk", {"tickets": [{"groupId": gid, "userId": 7},
                                                                   {"groupId": gid, "userId": "U-8"}]})
    assert [t["userId"] for t in bulk.json()["tickets"]] == ["7", "U-8"]
    error(call(client, "POST", "/api/tickets", {"groupId": gid, "userId": int(HUGE)}), 400, "VALIDATION_ERROR",
          f"userId: {HUGE} is invalid", "an integer userId is from 0 to")
    error(call(client, "POST", "/api/tickets", {"groupId": gid, "userId": "0" * 129}), 400, "VALIDATION_ERROR",
          "userId: '000", "(129 characters) is invalid", "at most 128 characters")
    error(call(client, "POST", "/api/tickets", {"groupId": gid, "userId": True}), 422, "INVALID_BODY", "userId")
    error(call(client, "POST", "/api/tickets", {"groupId": gid, "userId": 1.5}), 422, "INVALID_BODY", "userId")


@pytest.mark.parametrize(("method", "path", "body", "params", "status", "fragment"), [
    ("POST", "/api/tickets", {"groupId": 1, "priority": 9}, {}, 400, "priority: 9 is invalid"),
    ("POST", "/api/tickets", {"groupId": 1, "description": "d" * 4001}, {}, 400, "description: 'ddd"),
    ("POST", "/api/tickets", {"groupId": 1, "reference": ""}, {}, 400, "reference: '' is invalid"),
    ("POST", "/api/tickets", {"groupId": "one"}, {}, 422, "groupId: 'one' is invalid"),
    ("POST", "/api/tickets", {"groupId": 1, "userID": "U1"}, {}, 422, "userID: Extra inputs are not permitted"),
    ("POST", "/api/tickets/bulk", {"tickets": []}, {}, 400, "tickets: [] is invalid"),
    ("POST", "/api/tickets/bulk", {"tickets": [{"groupId": 1}] * 1001}, {}, 400, "at most 1000 items"),
    ("POST", "/api/groups", {"name": "n" * 129}, {}, 400, "name: 'nnn"),
    ("POST", "/api/groups", {"name": "KYC2", "activeStatus": 0}, {}, 422, "activeStatus: 0 is invalid"),
    ("POST", "/api/agents", {"agentId": "b", "name": "B", "email": "b@x.io " * 60, "groupIds": [1]}, {}, 400,
     "email: 'b@x.io"),
    ("POST", "/api/job/create", {"type": "manual", "attributes": {"title": "t"}, "idempotencyKey": "k" * 201},
     {}, 400, "idempotencyKey: 'kkk"),
    ("POST", "/api/job/create", {"type": "manual", "attributes": {"title": "t"}, "expiresAt": 4e9}, {}, 400,
     "expiresAt: 4000000000.0 is invalid (Value error, not an ISO 8601 date-time"),
    ("GET", "/api/tickets", None, {"createdTo": "0.5"}, 400, "createdTo: '0.5' is invalid"),
    ("GET", "/api/job/queue", None, {"createdFrom": "1e400"}, 400, "createdFrom: '1e400' is invalid"),
    ("GET", "/api/job/queue", None, {"createdBy": "c" * 129}, 400, "createdBy: 'ccc"),
    ("GET", "/api/audit", None, {"entityType": "t" * 33, "entityId": "1"}, 400, "entityType: 'ttt"),
    ("GET", "/api/tickets", None, {"priority": 0}, 400, "priority: '0' is invalid"),
    ("GET", "/api/tickets", None, {"limit": 501}, 400, "limit: '501' is invalid"),
])
def test_values_outside_the_domain_are_refused_naming_field_and_value(client, method, path, body, params, status,
                                                                      fragment):
    code = "VALIDATION_ERROR" if status == 400 else "INVALID_BODY"
    error(call(client, method, path, body, **params), status, code, fragment)


def test_openapi_documents_the_bounds(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    job = spec["paths"]["/api/job/{job_id}"]["get"]["parameters"][0]["schema"]
    assert (job["minimum"], job["maximum"]) == (1, MAX_ID)
    ticket = schemas["CreateTicket"]["properties"]
    assert ticket["groupId"]["maximum"] == MAX_ID  # exactly: FastAPI's model would write the float 2**63
    assert ticket["priority"]["minimum"] == 1 and ticket["priority"]["maximum"] == 5
    assert ticket["source"]["enum"] == ["manual", "job", "manual_job", "run_failure", "reconciliation",
                                         "principal_payment"]
    assert ticket["description"]["anyOf"][0]["maxLength"] == 4000
    assert {"type": "integer", "minimum": 0, "maximum": MAX_ID} in ticket["userId"]["anyOf"]
    assert schemas["CreateTickets"]["properties"]["tickets"]["maxItems"] == 1000
    assert schemas["CreateAgent"]["properties"]["email"]["pattern"]
    assert "enum" in schemas["CreateJob"]["properties"]["type"]
    queue = {p["name"]: p["schema"] for p in spec["paths"]["/api/job/queue"]["get"]["parameters"]}
    assert queue["limit"]["maximum"] == 500 and queue["cursor"]["anyOf"][0]["maximum"] == MAX_ID


def test_docs_work_offline(client):
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?['"]([^'"]+)['"]""", html.text)
        urls = [u for pair in urls for u in pair if u]
        assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
        assert "http://" not in html.text and "https://" not in html.text
        for url in urls:
            got = client.get(url)
            assert got.status_code == 200 and len(got.content) > 0, url
    assert "/openapi.json" in client.get("/docs").text
    assert len(client.get("/docs/assets/swagger-ui-bundle.js").content) > 500_000


def test_finance_reads_balances_and_analyst_reads_tickets_not_balances(client):
    assert call(client, "GET", "/api/balances/M1", role="finance").status_code == 200
    error(call(client, "GET", "/api/balances/M1", role="analyst"), 403, "FORBIDDEN")
    assert call(client, "GET", "/api/tickets", role="analyst").status_code == 200
    error(call(client, "GET", "/api/tickets", role="finance"), 403, "FORBIDDEN")
    assert call(client, "GET", "/api/job/queue", role="analyst").status_code == 200


def test_bulk_created_with_body_guard_still_correct_under_load(client):
    """The guard replays the body it read: a 1,000-ticket bulk arrives whole."""
    gid = call(client, "GET", "/api/groups").json()["groups"][0]["groupId"]
    batch = [{"groupId": gid, "userId": f"U{i}", "description": "d" * 3000} for i in range(1000)]
    made = call(client, "POST", "/api/tickets/bulk", {"tickets": batch})
    assert made.status_code == 201, made.text[:300]
    assert [t["userId"] for t in made.json()["tickets"]] == [f"U{i}" for i in range(1000)]
