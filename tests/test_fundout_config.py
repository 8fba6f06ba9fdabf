"""Fund-out configurations over REST on SQLite and PostgreSQL: exact paths, every validation rule and
default, 201/200/404/409/400, roles (ops or the merchant itself), and the audit of every change."""

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from ops_pipeline import audit
from ops_pipeline.api.app import create_app
from ops_pipeline.auth import mint_token
from ops_pipeline.fundout.config import parse

PATH = "/business-profiles/business/{}/autofundout"


@pytest.fixture
def client(ws):
    with TestClient(create_app(ws.settings)) as c:
        c.ws = ws
        yield c


def auth(client, role="merchant", sub="B1"):
    return {"Authorization": f"Bearer {mint_token(client.ws.settings, role, sub)}"}


def post(client, body, business="B1", **who):
    return client.post(PATH.format(business), json=body, headers=auth(client, **who))


def put(client, body, business="B1", **who):
    return client.put(PATH.format(business), json=body, headers=auth(client, **who))


def test_create_with_defaults_then_get_and_put(client):
    r = post(client, {"freqType": "D"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert {k: made[k] for k in ("businessId", "freqType", "day", "hour", "minimumBalance", "enabled", "timezone")} == {
        "businessId": "B1", "freqType": "D", "day": "", "hour": "22", "minimumBalance": 0, "enabled": False,
        "timezone": "UTC"}
    assert isinstance(made["id"], str) and made["id"].isdigit()
    got = client.get(PATH.format("B1"), headers=auth(client))
    assert (got.status_code, got.json()) == (200, made)
    changed = put(client, {"freqType": "W", "hour": "07", "minimumBalance": 10.005, "enabled": True})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["freqType"], body["day"], body["hour"], body["enabled"]) == ("W", "6", "7", True)
    assert '"minimumBalance":10.005,' in changed.text  # written exactly, never through a float
    # A PUT keeps the fields it does not give; going back to D empties the day.
    assert put(client, {"freqType": "D"}).json()["day"] == ""
    assert put(client, {"hour": 5}).json()["freqType"] == "D"


def test_second_post_is_409_and_missing_is_404(client):
    assert post(client, {"freqType": "H"}).status_code == 201
    r = post(client, {"freqType": "D"})
    assert (r.status_code, r.json()["code"]) == (409, "CONFLICT")
    assert "B1" in r.json()["error"]
    missing = client.get(PATH.format("B2"), headers=auth(client, sub="B2"))
    assert (missing.status_code, missing.json()["code"]) == (404, "NOT_FOUND")
    assert put(client, {"enabled": True}, business="B2", sub="B2").status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "allowed"),
    [
        ({}, "freqType", "H, D, W, M"),
        ({"freqType": "Y"}, "freqType", "H, D, W, M"),
        ({"freqType": "d"}, "freqType", "H, D, W, M"),
        ({"freqType": "D", "hour": 24}, "hour", "0-23"),
        ({"freqType": "D", "hour": -1}, "hour", "0-23"),
        ({"freqType": "D", "hour": "\u0667"}, "hour", "0-23"),  # Arabic-Indic 7: int() would take it
        ({"freqType": "D", "hour": "\u0660\u0667"}, "hour", "0-23"),
        ({"freqType": "W", "day": "\u0666"}, "day", "0-6"),
        ({"freqType": "D", "hour": "007"}, "hour", "one- or two-digit string"),
        ({"freqType": "D", "hour": ""}, "hour", "0-23"),  # empty only for H
        ({"freqType": "W", "day": ""}, "day", "0-6"),  # empty only for H and D
        ({"freqType": "D", "day": "99"}, "day", "0-31"),  # ignored for D, but never garbage
        ({"freqType": "D", "hour": 10**30}, "hour", "0-23"),
        ({"freqType": "D", "hour": "25"}, "hour", "0-23"),
        ({"freqType": "D", "hour": 7.0}, "hour", "0-23"),
        ({"freqType": "D", "hour": True}, "hour", "0-23"),
        ({"freqType": "W", "day": 7}, "day", "0-6"),
        ({"freqType": "W", "day": "-1"}, "day", "0-6"),
        ({"freqType": "M", "day": 0}, "day", "1-31"),
        ({"freqType": "M", "day": 32}, "day", "1-31"),
        ({"freqType": "D", "minimumBalance": -1}, "minimumBalance", ">= 0 and below 10^15"),
        ({"freqType": "D", "minimumBalance": "1.0001"}, "minimumBalance", "at most 3 decimals"),
        ({"freqType": "D", "minimumBalance": 0.0001}, "minimumBalance", "at most 3 decimals"),
        ({"freqType": "D", "minimumBalance": "ten"}, "minimumBalance", "at most 3 decimals"),
        ({"freqType": "D", "minimumBalance": "NaN"}, "minimumBalance", "at most 3 decimals"),
        ({"freqType": "D", "minimumBalance": "\u0665"}, "minimumBalance", "at most 3 decimals"),
        ({"freqType": "D", "minimumBalance": 10**15}, "minimumBalance", "below 10^15"),
        ({"freqType": "D", "minimumBalance": "1e3"}, "minimumBalance", "at most 3 decimals"),
        ({"freqType": "D", "minimumBalance": True}, "minimumBalance", "at most 3 decimals"),
        ({"freqType": "D", "enabled": "yes"}, "enabled", "true or false"),
        ({"freqType": "D", "timezone": "Mars/Base"}, "timezone", "IANA"),
        ({"freqType": "D", "notifyEmail": "nobody"}, "notifyEmail", "email"),
        ({"freqType": "D", "notifyEmail": "a@localhost"}, "notifyEmail", "email"),
        ({"freqType": "D", "notifyEmail": "x" * 1000 + "@example.com"}, "notifyEmail", "at most 254"),
        ({"freqType": "D", "notifyEmail": "a" * 250 + "@b.co"}, "notifyEmail", "at most 254"),
        ({"freqType": "D", "notifyEmail": "a\u0000b@example.com"}, "notifyEmail", "NUL"),  # refused by the API guard, naming the field
        ({"freqType": "D", "timezone": "x" * 65}, "timezone", "at most 64"),
        ({"freqType": "D", "timezone": "../../etc/passwd"}, "timezone", "IANA"),
        ({"freqType": "D", "id": {"a": 1}}, "id", "read-only"),
        ({"freqType": "D", "colour": "red"}, "colour", "freqType, day, hour"),
        ({"freqType": "D", "businessId": "B9"}, "businessId", "differs"),
    ],
)
def test_invalid_bodies_are_400_naming_the_field_and_the_allowed_values(client, body, field, allowed):
    r = post(client, body)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    message = r.json()["error"]
    assert message.startswith(f"{field}:") and allowed in message, message
    assert len(message) < 300  # a huge value is not echoed back whole
    assert client.get(PATH.format("B1"), headers=auth(client)).status_code == 404  # nothing stored


def test_day_and_hour_rules_and_defaults():
    def cfg(**body):
        return parse("B1", body, None, "Europe/Paris")

    assert (cfg(freqType="W").day, cfg(freqType="M").day, cfg(freqType="H", day=5).day) == (6, 1, None)
    assert cfg(freqType="D", day="5").day is None and cfg(freqType="D", day="").day is None  # ignored for D
    assert (cfg(freqType="W", day="00").day, cfg(freqType="W", day="6").day, cfg(freqType="M", day="31").day) == (
        0, 6, 31)
    assert cfg(freqType="H").hour == 22 and cfg(freqType="D", hour="00").hour == 0
    assert (cfg(freqType="D", hour="9").hour, cfg(freqType="D", hour=9).hour, cfg(freqType="H", hour="").hour) == (
        9, 9, 22)
    assert cfg(freqType="D").timezone == "Europe/Paris" and cfg(freqType="D").enabled is False
    minimum = cfg(freqType="D", minimumBalance="10.005")
    assert (minimum.minimum_milli, minimum.minimum_minor(2), minimum.minimum_minor(0),
            minimum.minimum_minor(3)) == (10005, 1001, 11, 10005)  # rounded up, never below the minimum
    assert str(cfg(freqType="D", minimumBalance="5.500").minimum_balance) == "5.5"
    assert cfg(freqType="D", minimumBalance=Decimal("100.50")).minimum_balance == Decimal("100.5")


def test_roles_ops_or_the_merchant_itself(client):
    assert post(client, {"freqType": "H"}, business="B1", role="ops", sub="alice").status_code == 201
    other = client.get(PATH.format("B1"), headers=auth(client, sub="B2"))
    assert (other.status_code, other.json()["code"]) == (403, "FORBIDDEN")
    assert client.get(PATH.format("B1"), headers=auth(client, role="analyst", sub="x")).status_code == 403
    assert client.get(PATH.format("B1"), headers=auth(client, role="internal", sub="x")).status_code == 403
    assert client.get(PATH.format("B1")).status_code == 401


def test_every_change_is_audited_with_who_before_and_after(client):
    post(client, {"freqType": "D", "minimumBalance": "5"}, role="ops", sub="alice")
    put(client, {"enabled": True})
    with client.ws.engine.connect() as conn:
        trail = audit.history(conn, "fundout_config", "B1")
    assert [(a["action"], a["actor"]) for a in trail] == [("create", "ops:alice"), ("update", "merchant:B1")]
    assert trail[0]["before"] is None and trail[0]["after"]["minimum_balance"] == "5"
    assert (trail[1]["before"]["enabled"], trail[1]["after"]["enabled"]) == (False, True)
