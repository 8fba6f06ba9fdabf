"""The published fund-out contract (OpenAPI 3.0.3) as its generated clients use it: its example bodies
(string `day`/`hour`, a JSON number `minimumBalance`), the documented response shapes, the
`X-Request-Correlation-Id` and channel headers, and the bounds that clients see in our schema."""

import json
import logging

import pytest
from fastapi.testclient import TestClient

from ops_pipeline.api.app import create_app
from ops_pipeline.auth import mint_token

PATH = "/business-profiles/business/{}/autofundout"
# The contract's two example request bodies, as a generated client sends them.
WEEKLY = {"businessId": "B1", "freqType": "W", "day": "6", "hour": "0", "minimumBalance": 100.5, "enabled": True}
DAILY = {"businessId": "B2", "freqType": "D", "day": "", "hour": "09", "minimumBalance": 0, "enabled": False}
CHANNEL = {"X-Chnl-CountryCode": "IN", "X-Chnl-Group-Member": "acme", "X-DeviceType": "web",
           "X-Device-Id": "dev-42", "X-locale": "en-IN"}


@pytest.fixture
def client(ws):
    with TestClient(create_app(ws.settings)) as c:
        c.ws = ws
        yield c


def auth(client, business="B1", role="merchant"):
    return {"Authorization": f"Bearer {mint_token(client.ws.settings, role, business)}"}


def shape(body: dict) -> dict:
    """The documented types of a configuration response."""
    return {k: type(v).__name__ for k, v in body.items()}


CONFIG_SHAPE = {"id": "str", "businessId": "str", "freqType": "str", "day": "str", "hour": "str",
                "minimumBalance": "float", "enabled": "bool", "timezone": "str", "notifyEmail": "NoneType",
                "createdAt": "str", "updatedAt": "str"}


def test_the_contract_examples_are_accepted_and_answered_in_the_contract_shape(client):
    weekly = client.post(PATH.format("B1"), json=WEEKLY, headers={**auth(client), **CHANNEL})
    assert weekly.status_code == 201, weekly.text
    body = weekly.json()
    assert shape(body) == CONFIG_SHAPE
    assert {k: body[k] for k in WEEKLY} == WEEKLY  # what was sent comes back in the same form
    assert '"minimumBalance":100.5,' in weekly.text
    daily = client.post(PATH.format("B2"), json=DAILY, headers=auth(client, "B2"))
    assert daily.status_code == 201, daily.text
    assert (daily.json()["day"], daily.json()["hour"], daily.json()["minimumBalance"]) == ("", "9", 0)
    assert '"minimumBalance":0,' in daily.text
    # A client PUTs back what it GETs; integers and two-digit strings are accepted alike.
    got = client.get(PATH.format("B1"), headers=auth(client)).json()
    again = client.put(PATH.format("B1"), json={**got, "hour": 7, "day": "05"}, headers=auth(client))
    assert again.status_code == 200, again.text
    assert (again.json()["hour"], again.json()["day"], again.json()["id"]) == ("7", "5", got["id"])


@pytest.mark.parametrize(("sent", "written"), [
    ("100.5", "100.5"), ("0.001", "0.001"), ("999999999999999.999", "999999999999999.999"), ("1E+2", "100"),
    ("12345678901234.125", "12345678901234.125"),  # a float would make it ...234.125 only by luck
])
def test_minimum_balance_is_read_and_written_exactly(client, sent, written):
    raw = f'{{"freqType":"D","minimumBalance":{sent}}}'
    r = client.post(PATH.format("B1"), content=raw, headers={**auth(client), "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert f'"minimumBalance":{written},' in r.text
    got = client.get(PATH.format("B1"), headers=auth(client))
    assert f'"minimumBalance":{written},' in got.text


def test_request_correlation_id_is_echoed_and_names_errors_on_every_route(client):
    mine = {"X-Request-Correlation-Id": "req-123"}
    ok = client.post(PATH.format("B1"), json=WEEKLY, headers={**auth(client), **mine})
    assert (ok.headers["X-Request-Correlation-Id"], ok.headers["X-Correlation-Id"]) == ("req-123", "req-123")
    bad = client.put(PATH.format("B1"), json={"hour": "24"}, headers={**auth(client), **mine})
    assert (bad.status_code, bad.json()["correlationId"], bad.headers["X-Request-Correlation-Id"]) == (
        400, "req-123", "req-123")
    denied = client.get(PATH.format("B1"), headers=mine)
    assert (denied.status_code, denied.json()["correlationId"]) == (401, "req-123")
    health = client.get("/healthz", headers=mine)
    assert health.headers["X-Request-Correlation-Id"] == "req-123"
    older = client.get(PATH.format("B9"), headers={**auth(client, "B9"), "X-Correlation-Id": "old-7"})
    assert (older.json()["correlationId"], older.headers["X-Request-Correlation-Id"]) == ("old-7", "old-7")
    both = client.get(PATH.format("B9"), headers={**auth(client, "B9"), "X-Correlation-Id": "old-7", **mine})
    assert both.json()["correlationId"] == "req-123"
    insane = client.get(PATH.format("B9"), headers={**auth(client, "B9"), "X-Request-Correlation-Id": "a b"})
    assert insane.json()["correlationId"] not in ("a b", "") and insane.headers["X-Correlation-Id"] != "a b"


def test_channel_headers_are_accepted_and_logged(client, caplog):
    with caplog.at_level(logging.INFO, logger="ops_pipeline.api.fundout"):
        r = client.post(PATH.format("B1"), json=WEEKLY,
                        headers={**auth(client), **CHANNEL, "X-Request-Correlation-Id": "req-9"})
    assert r.status_code == 201
    [line] = [m for m in caplog.messages if "channel=" in m]
    assert "correlation=req-9" in line and "'country': 'IN'" in line and "'locale': 'en-IN'" in line
    long = client.get(PATH.format("B1"), headers={**auth(client), "X-Chnl-CountryCode": "X" * 9})
    assert (long.status_code, long.json()["error"].split(":")[0]) == (400, "X-Chnl-CountryCode")


def test_bodies_that_are_too_deep_too_big_or_not_json_are_refused_without_a_500(client):
    deep = "[" * 100_000 + "]" * 100_000
    headers = {**auth(client), "Content-Type": "application/json"}
    nested = client.post(PATH.format("B1"), content='{"freqType": %s}' % ("[" * 5000 + "]" * 5000), headers=headers)
    assert (nested.status_code, nested.json()["error"]) == (400, "body: arrays and objects nest deeper than 32 levels")
    huge = client.post(PATH.format("B1"), content=deep, headers=headers)
    assert (huge.status_code, huge.json()["code"]) == (400, "VALIDATION_ERROR")  # depth is checked first
    email = client.post(PATH.format("B1"), json={"freqType": "D", "notifyEmail": "x" * 100_000 + "@a.io"},
                        headers=auth(client))
    assert (email.status_code, email.json()["error"].split(":")[0]) == (413, "body")
    for kind in ("text/plain", None):
        sent = {**auth(client), **({"Content-Type": kind} if kind else {})}
        r = client.put(PATH.format("B1"), content=json.dumps(WEEKLY), headers=sent)
        assert (r.status_code, r.json()["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE"), r.text
        assert r.json()["error"].startswith("Content-Type:")
    assert client.post(PATH.format("B1"), content=b"[1]", headers=headers).json()["error"] == (
        "body: must be a JSON object")
    long_id = client.get(PATH.format("B" * 65), headers=auth(client, "ops-1", "ops"))
    assert (long_id.status_code, long_id.json()["error"].split(":")[0]) == (400, "businessId")


def test_the_openapi_schema_shows_the_bounds_and_the_contract_shapes(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"][PATH.format("{businessId}")]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert body["notifyEmail"]["anyOf"][0]["maxLength"] == 254
    assert {s.get("pattern") for s in body["hour"]["anyOf"]} >= {"^([0-9]|[01][0-9]|2[0-3])?$"}
    number = next(s for s in body["minimumBalance"]["anyOf"] if s.get("type") == "number")
    assert (number["minimum"], number["exclusiveMaximum"]) == (0, 1e15)
    assert body["freqType"]["enum"] == ["H", "D", "W", "M"]
    headers = {p["name"] for p in op["parameters"] if p["in"] == "header"}
    assert headers >= {*CHANNEL, "X-Request-Correlation-Id"}
    view = spec["components"]["schemas"]["ConfigView"]["properties"]
    assert (view["id"]["type"], view["day"]["type"], view["hour"]["type"], view["enabled"]["type"]) == (
        "string", "string", "string", "boolean")
    listing = spec["paths"]["/business/autofundout/batches"]["get"]["parameters"]
    cursor = next(p for p in listing if p["name"] == "cursor")["schema"]["anyOf"][0]
    assert (cursor["minimum"], cursor["maximum"]) == (1, 2**63 - 1)
    assert "202" in spec["paths"]["/business/autofundout"]["post"]["responses"]
