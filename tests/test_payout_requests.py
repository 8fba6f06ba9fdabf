"""Payout requests (`POST /api/payouts`, `GET /api/payouts/{id}`) on SQLite and PostgreSQL, paid by the bank
simulator over real HTTP: an amount and "all" above the fund-out minimum, idempotent and conflicting
repeats, insufficient funds, roles, the audit trail, the payouts recon against the simulator's day
statement and a bank reversal."""

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from ops_pipeline.api.app import create_app
from ops_pipeline.audit import history
from ops_pipeline.auth import mint_token
from ops_pipeline.fundout import config
from ops_pipeline.ledger import balances
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.recon import payouts as recon_payouts
from ops_pipeline.recon import store
from ops_pipeline.statements.intake import load_statement
from tests.servers import environment, run


@pytest.fixture
def client(bank_ws):
    post_entries(bank_ws, [Entry("ADJUSTMENT", "f1", "B1", "EUR", 12_345, "adjustment"),
                           Entry("ADJUSTMENT", "f2", "B2", "EUR", 500, "adjustment")], "funding")
    config.create_config(bank_ws, "B1", {"freqType": "D", "minimumBalance": "23.45"}, "ops:t")
    with TestClient(create_app(bank_ws.settings)) as c:
        c.ws = bank_ws
        yield c


def auth(client, role="internal", sub="billing", key=None):
    headers = {"Authorization": f"Bearer {mint_token(client.ws.settings, role, sub)}"}
    return headers | ({"Idempotency-Key": key} if key else {})


def pay(client, key, business, amount, currency="EUR"):
    body = {"businessId": business, "currency": currency, "amount": amount}
    return client.post("/api/payouts", json=body, headers=auth(client, key=key))


def available(ws, business):
    return {b.currency: b.available_minor for b in balances.get_balances(ws, business)}["EUR"]


def test_an_amount_is_paid_once_per_key_and_another_body_under_the_key_is_409_naming_the_fields(client, sim):
    body = {"businessId": "B2", "currency": "EUR", "amount": "1.50", "reason": "refund of fees"}
    first = client.post("/api/payouts", json=body, headers=auth(client, key="k1"))
    assert first.status_code == 201, first.text
    made = first.json()
    assert (made["kind"], made["businessId"], made["amount"], made["status"]) == ("request", "B2", "1.50", "posted")
    assert available(client.ws, "B2") == 350
    again = client.post("/api/payouts", content=b'{"businessId":"B2","currency":"EUR","amount":1.5,'
                        b'"reason":"refund of fees"}', headers=auth(client, key="k1") | {
                            "Content-Type": "application/json"})
    assert (again.status_code, again.json()) == (200, made)  # 1.5 is 1.50: the same body
    other = client.post("/api/payouts", json={**body, "amount": "2", "reason": "x"}, headers=auth(client, key="k1"))
    assert (other.status_code, other.json()["code"]) == (409, "CONFLICT")
    assert other.json()["error"].endswith("was used for another payout request (amount, reason)")
    assert available(client.ws, "B2") == 350 and len(sim.state()["payouts"]) == 1
    with client.ws.engine.connect() as conn:
        trail = [(a["actor"], a["action"], a["reason"]) for a in history(conn, "payout", made["payoutId"])]
        requested = history(conn, "payout", made["payoutId"])[0]["after"]
    assert trail == [("internal:billing", "requested", "refund of fees")]
    assert (requested["amount"], requested["amount_minor"], requested["kind"]) == ("1.50", 150, "request")
    # A cash-out's key is apart from a request's.
    cash = client.post("/business-profiles/business/B2/cashout", json={"amount": "1", "currency": "EUR"},
                       headers=auth(client, "ops", "alice", key="k1"))
    assert (cash.status_code, cash.json()["kind"], available(client.ws, "B2")) == (201, "manual", 250)


def test_all_pays_what_is_above_the_minimum_or_everything_without_a_configuration(client):
    above = pay(client, "all-1", "B1", "all")
    assert (above.status_code, above.json()["amount"], above.json()["status"]) == (201, "100.00", "posted")
    assert available(client.ws, "B1") == 2_345  # the minimum stays
    nothing = pay(client, "all-2", "B1", "all")
    assert (nothing.status_code, nothing.json()["code"]) == (409, "INSUFFICIENT_FUNDS")
    assert "available 23.45 EUR of merchant 'B1' is not above its minimum balance 23.45" in nothing.json()["error"]
    repeat = pay(client, "all-1", "B1", "all")
    assert (repeat.status_code, repeat.json()["payoutId"]) == (200, above.json()["payoutId"])
    whole = pay(client, "all-3", "B2", "all")
    assert (whole.status_code, whole.json()["amount"], available(client.ws, "B2")) == (201, "5.00", 0)


def test_insufficient_funds_unknown_merchant_and_bad_requests(client):
    poor = pay(client, "p1", "B2", "5.01")
    assert (poor.status_code, poor.json()["code"]) == (409, "INSUFFICIENT_FUNDS")
    assert "exceeds the available 5.00 EUR" in poor.json()["error"]
    usd = pay(client, "p2", "B2", "1", "USD")
    assert (usd.status_code, "available 0.00 USD" in usd.json()["error"]) == (409, True)
    missing = pay(client, "p3", "NOPE", "1")
    assert (missing.status_code, missing.json()["error"]) == (404, "businessId: 'NOPE' is no merchant with a balance")
    cases = [({"businessId": "B2", "currency": "EUR", "amount": "1"}, None, "Idempotency-Key: "),
             ({"businessId": "B2", "currency": "EUR"}, "b1", "amount: is required"),
             ({"businessId": "B2", "currency": "EUR", "amount": "1", "note": 1}, "b2", "note: is not a field"),
             ({"businessId": "B2", "currency": "EURO", "amount": "1"}, "b3", "currency: "),
             ({"businessId": "B2", "currency": "EUR", "amount": "1.001"}, "b4", "amount"),
             ({"businessId": "B2", "currency": "EUR", "amount": "most"}, "b5", "amount: "),
             ({"businessId": "B2", "currency": "EUR", "amount": -1}, "b6", "amount"),
             ({"businessId": "", "currency": "EUR", "amount": "1"}, "b7", "businessId: "),
             ({"businessId": "B2", "currency": "EUR", "amount": "1", "reason": ""}, "b8", "reason: ")]
    for body, key, message in cases:
        r = client.post("/api/payouts", json=body, headers=auth(client, key=key))
        assert (r.status_code, r.json()["error"].startswith(message)) == (400, True), (body, r.text)
    assert available(client.ws, "B2") == 500


def test_roles_and_get(client):
    body = {"businessId": "B2", "currency": "EUR", "amount": "1"}
    for role, sub in (("ops", "alice"), ("finance", "f"), ("merchant", "B2")):
        assert client.post("/api/payouts", json=body, headers=auth(client, role, sub, key="r")).status_code == 403
    assert client.post("/api/payouts", json=body, headers={"Idempotency-Key": "r"}).status_code == 401
    made = client.post("/api/payouts", json=body, headers=auth(client, key="r")).json()
    for role in ("internal", "ops", "finance"):
        got = client.get(f"/api/payouts/{made['payoutId']}", headers=auth(client, role, "x"))
        assert (got.status_code, got.json()) == (200, made)
    assert client.get(f"/api/payouts/{made['payoutId']}", headers=auth(client, "merchant", "B2")).status_code == 403
    unknown = client.get("/api/payouts/no-such-payout", headers=auth(client, "ops", "x"))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "NOT_FOUND")


def test_a_request_is_matched_by_the_payouts_recon_and_a_bank_reversal_returns_it(client, sim):
    one = pay(client, "rc1", "B1", "10.00").json()
    two = pay(client, "rc2", "B2", "all").json()
    day = datetime.now(UTC).date()  # payouts are dated when posted; OPS_TIMEZONE is UTC here
    assert load_statement(client.ws, sim.statement("mt940", day=day).encode(), "day.sta", "t").entries == 2
    internal, _ = recon_payouts.records(client.ws, day)
    assert sorted(internal.select("id", "kind", "amount").rows()) == sorted(
        [(one["payoutId"], "request", 1_000), (two["payoutId"], "request", 500)])
    out = run(environment(client.ws), "recon", "run", "--date", day.isoformat(), "--name", "payouts",
              "--format", "csv")
    assert "matched,EUR,2,15.00,15.00,0.00" in out.stdout, out.stdout
    matched = {r.internal_ids: (r.status, r.external_amount_minor)
               for r in store.latest_results(client.ws, "payouts", day)}
    assert matched == {(one["payoutId"],): ("matched", 1_000), (two["payoutId"],): ("matched", 500)}

    sim.reverse(two["payoutId"])  # the account was closed: the day's statement now carries the reversal
    assert load_statement(client.ws, sim.statement("mt940", day=day).encode(), "day2.sta", "t").entries == 3
    [returned] = [r for r in recon_payouts.apply_reversals(client.ws, "ops:alice") if r.outcome == "returned"]
    assert (returned.payout_id, returned.amount_minor) == (two["payoutId"], 500)
    got = client.get(f"/api/payouts/{two['payoutId']}", headers=auth(client, "finance", "f")).json()
    assert (got["status"], available(client.ws, "B2")) == ("returned", 500)


def test_the_same_key_at_once_pays_once(client, sim):
    from concurrent.futures import ThreadPoolExecutor

    from ops_pipeline.fundout import requests

    def ask(_):
        return requests.request_payout(client.ws, "B2", "EUR", "1", "internal:billing", "same")

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, range(4)))
    assert sorted(created for _, created in answers) == [False, False, False, True]
    assert len({p.id for p, _ in answers}) == 1 and len(sim.state()["payouts"]) == 1
    assert available(client.ws, "B2") == 400
