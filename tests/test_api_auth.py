"""API foundation: bearer tokens (401), roles (403), the error body, correlation ids, health and OpenAPI."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends
from fastapi.testclient import TestClient
from pydantic import BaseModel

from ops_pipeline.api.app import create_app
from ops_pipeline.api.auth import TokenVerifier, require_roles
from ops_pipeline.auth import AuthError, Principal, mint_token
from ops_pipeline.ledger.entries import Entry, post_entries

PATH = "/api/balances/M1"


@pytest.fixture
def ws(sqlite_ws):
    """Auth does not depend on the database: the embedded default is enough here."""
    post_entries(sqlite_ws, [Entry("ADJUSTMENT", "a1", "M1", "EUR", 1000, "adjustment")], "test")
    return sqlite_ws


@pytest.fixture
def client(ws):
    with TestClient(create_app(ws.settings)) as c:
        yield c


def claims(**override) -> dict:
    now = datetime.now(UTC)
    return {"sub": "alice", "role": "ops", "iat": now, "exp": now + timedelta(minutes=5)} | override


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(r, status: int, code: str, message: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "code", "correlationId"}
    assert body["code"] == code
    assert body["correlationId"] == r.headers["X-Correlation-Id"]
    if message is not None:
        assert body["error"] == message
    return body


def test_valid_token_passes(client, ws):
    r = client.get(PATH, headers=bearer(mint_token(ws.settings, "finance", "bob")))
    assert r.status_code == 200
    assert r.json()["balances"][0]["confirmedBalance"] == "10.00"


@pytest.mark.parametrize("headers, message", [
    ({}, "Authorization: a bearer token is required"),
    ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, "Authorization: a bearer token is required"),
    ({"Authorization": "Bearer"}, "Authorization: a bearer token is required"),
    ({"Authorization": "Bearer not-a-jwt"}, None),
])
def test_missing_or_malformed_token_is_401(client, headers, message):
    r = client.get(PATH, headers=headers)
    body = assert_error(r, 401, "UNAUTHORIZED", message)
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert body["error"].startswith(("Authorization:", "token: invalid"))


def test_expired_token_is_401(client, ws):
    past = datetime.now(UTC) - timedelta(hours=1)
    token = jwt.encode(claims(iat=past, exp=past + timedelta(minutes=5)), ws.settings.jwt_secret, "HS256")
    assert_error(client.get(PATH, headers=bearer(token)), 401, "UNAUTHORIZED", "token: expired")


def test_a_verified_token_still_expires(ws):
    """Verified tokens are remembered, but each use checks the expiry again."""
    settings = ws.settings
    exp = int(time.time()) + 2  # JWT times are whole seconds: valid for at least one more second
    token = jwt.encode(claims(exp=exp), settings.jwt_secret, "HS256")
    verify = TokenVerifier(settings)
    assert verify(token) == verify(token) == Principal("alice", "ops")
    time.sleep(exp - time.time() + 0.05)
    with pytest.raises(AuthError, match="token: expired"):
        verify(token)


@pytest.mark.parametrize("token_claims, key, algorithm", [
    (claims(), "some-other-secret-of-sufficient-length-32b", "HS256"),  # bad signature
    (claims(), None, "none"),  # unsigned
    ({k: v for k, v in claims().items() if k != "exp"}, "ws", "HS256"),  # no expiry
    ({k: v for k, v in claims().items() if k != "sub"}, "ws", "HS256"),  # no subject
    (claims(role="root"), "ws", "HS256"),  # unknown role
])
def test_invalid_tokens_are_401(client, ws, token_claims, key, algorithm):
    token = jwt.encode(token_claims, ws.settings.jwt_secret if key == "ws" else key, algorithm)
    body = assert_error(client.get(PATH, headers=bearer(token)), 401, "UNAUTHORIZED")
    assert body["error"].startswith("token: ")


def test_rs256_public_key_from_settings(ws):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    settings = dataclasses.replace(ws.settings, jwt_public_key=public_pem)
    with TestClient(create_app(settings)) as c:
        assert c.get(PATH, headers=bearer(jwt.encode(claims(), private, "RS256"))).status_code == 200
        hs256 = mint_token(ws.settings, "ops", "alice")  # signed with the workspace secret: not accepted now
        assert_error(c.get(PATH, headers=bearer(hs256)), 401, "UNAUTHORIZED")


def test_merchant_self_and_roles(client, ws):
    def get(role, sub="x", path=PATH):
        return client.get(path, headers=bearer(mint_token(ws.settings, role, sub)))

    assert get("merchant", "M1").status_code == 200
    assert_error(get("merchant", "M2"), 403, "FORBIDDEN", "merchant_id: a merchant token reaches only its own business")
    assert_error(get("analyst"), 403, "FORBIDDEN",
                 "role: 'analyst' may not do this; allowed: ops, finance, internal or the merchant itself")


def test_require_roles_refuses_unknown_roles_at_definition():
    with pytest.raises(ValueError, match="roles: \\['admin'\\]"):
        require_roles("ops", "admin")
    with pytest.raises(ValueError):
        require_roles()


def test_require_roles_reusable_on_other_routes(ws):
    """How later routers use it: a role-only route and a business-scoped route with another parameter name."""
    app = create_app(ws.settings)

    async def ok() -> dict:
        return {"ok": True}

    app.add_api_route("/t/jobs", ok, dependencies=[Depends(require_roles("ops", "internal"))])
    app.add_api_route("/t/business/{businessId}/autofundout", ok,
                      dependencies=[Depends(require_roles("ops", merchant_self="businessId"))])
    token = {role: bearer(mint_token(ws.settings, role, "B7")) for role in ("ops", "internal", "merchant", "finance")}
    with TestClient(app) as c:
        assert [c.get("/t/jobs", headers=token[r]).status_code for r in token] == [200, 200, 403, 403]
        assert [c.get("/t/business/B7/autofundout", headers=token[r]).status_code for r in token] == [
            200, 403, 200, 403]
        assert c.get("/t/business/B8/autofundout", headers=token["merchant"]).status_code == 403


def test_correlation_id_taken_from_the_request_or_generated(client, ws):
    ok = bearer(mint_token(ws.settings, "ops", "alice"))
    r = client.get(PATH, headers=ok | {"X-Correlation-Id": "abc-123"})
    assert (r.status_code, r.headers["X-Correlation-Id"]) == (200, "abc-123")
    r = client.get("/api/balances/nobody", headers={"X-Correlation-Id": "abc-124"} | ok)
    assert_error(r, 404, "NOT_FOUND")
    assert r.json()["correlationId"] == "abc-124"
    generated = {client.get(PATH, headers=ok).headers["X-Correlation-Id"] for _ in range(3)}
    assert len(generated) == 3
    r = client.get(PATH, headers=ok | {"X-Correlation-Id": "bad id\twith spaces"})
    assert r.headers["X-Correlation-Id"] not in ("bad id\twith spaces", "")
    assert client.get(PATH, headers=ok | {"X-Correlation-Id": "y" * 129}).headers["X-Correlation-Id"] != "y" * 129


def test_unknown_route_and_method(client):
    assert_error(client.get("/api/nothing"), 404, "NOT_FOUND", "GET /api/nothing: Not Found")
    r = client.delete(PATH)
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert r.headers["Allow"] == "GET"


class Job(BaseModel):
    kind: str
    amount: int


async def create(job: Job) -> dict:
    return {"kind": job.kind}


async def crash() -> dict:
    raise RuntimeError("secret internals")


def test_body_parse_failures_are_422_and_unexpected_errors_500(ws):
    """The contract later routes inherit: FastAPI's own body parsing -> 422; a crash -> 500 without internals."""
    app = create_app(ws.settings)
    app.add_api_route("/t/job", create, methods=["POST"])
    app.add_api_route("/t/crash", crash)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.post("/t/job", json={"kind": "a", "amount": 1}).json() == {"kind": "a"}
        body = assert_error(c.post("/t/job", json={"kind": "a", "amount": "lots"}), 422, "INVALID_BODY")
        assert body["error"].startswith("amount: ")
        assert_error(c.post("/t/job", content=b"{not json", headers={"Content-Type": "application/json"}),
                     422, "INVALID_BODY")
        r = c.get("/t/crash", headers={"X-Correlation-Id": "boom-1"})
        body = assert_error(r, 500, "INTERNAL_ERROR", "internal error (correlation id boom-1)")
        assert "secret" not in r.text
        r = c.get("/t/crash", headers={"X-Request-Correlation-Id": "boom-2"})  # the fund-out contract's header
        assert_error(r, 500, "INTERNAL_ERROR", "internal error (correlation id boom-2)")
        assert r.headers["X-Request-Correlation-Id"] == r.headers["X-Correlation-Id"] == "boom-2"


def test_health_openapi_and_docs_need_no_token(client):
    r = client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/api/balances/{merchant_id}"]["get"]
    assert op["security"] == [{"HTTPBearer": []}]
    assert set(op["responses"]) == {"200", "400", "401", "403", "404", "4XX"}
    assert op["responses"]["403"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert spec["components"]["schemas"]["CurrencyBalance"]["properties"].keys() >= {
        "confirmedBalance", "settledBalance", "held", "available", "reserved", "asOf"}
    assert client.get("/docs").status_code == 200


def test_health_reports_an_unreachable_database(tmp_path):
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "home", "postgresql+psycopg2://postgres@127.0.0.1:1/none")
    with TestClient(create_app(settings)) as c:
        assert_error(c.get("/healthz"), 503, "UNAVAILABLE", "database: unreachable (OperationalError)")
