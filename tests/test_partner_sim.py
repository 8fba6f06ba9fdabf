"""The partner/bank simulator and its clients: idempotency keys, faults, retries, the in-process sandbox."""

import json

import httpx
import pytest

from ops_pipeline.partners import HttpOptions, Simulator, bank_client, partner_client, sandbox
from ops_pipeline.partners.app import serving
from ops_pipeline.partners.clients import RetryTransport
from tests.conftest import make_settings

PRINCIPAL = {"principal_id": "P1", "legal_name": "Bean There", "upi_vpas": ["beanthere@okhdfc", "bt2@ybl"]}
ACCOUNT = {"account_holder": "Bean There", "account_number": "50100123456789", "ifsc": "HDFC0001234"}
FAST = HttpOptions(timeout=5.0, retries=2, backoff=0.01)


@pytest.fixture
def client(tmp_path, sim_url):
    settings = make_settings(tmp_path, OPS_PARTNER_URL=sim_url, OPS_BANK_URL=sim_url)
    with partner_client(settings, FAST) as c:
        yield c


def test_same_key_replays_the_first_answer_and_acts_once(sim):
    first = sim.handle("POST", "/principals", PRINCIPAL, "k1")
    again = sim.handle("POST", "/principals", PRINCIPAL, "k1")
    assert first == again == (201, {"principal_id": "P1", "partner_ref": "PR-000001", "upi_vpas": 2})
    assert list(sim.state()["principals"]) == ["P1"]
    assert sim.calls("k1") == 2
    other = sim.handle("POST", "/principals", {**PRINCIPAL, "legal_name": "Other"}, "k1")
    assert other == (422, {"error": "Idempotency-Key 'k1' was used for a different request"})
    assert sim.handle("POST", "/principals", PRINCIPAL, "k2") == (409, {"error": "principal 'P1' already exists"})


def test_a_refusal_is_not_stored_so_the_same_key_succeeds_once_the_cause_is_gone(sim):
    transfer = {"principal_id": "P1", "amount": "100.50", "currency": "INR", "purpose": "settlement"}
    refused = sim.handle("POST", "/transfers", transfer, "t1")
    assert refused == (422, {"error": "principal 'P1' has no registered bank account"})
    assert sim.handle("POST", "/beneficiaries", {"principal_id": "P1", **ACCOUNT}, "b1")[0] == 201
    status, body = sim.handle("POST", "/transfers", transfer, "t1")
    assert (status, body) == (201, {"transfer_id": "TR-000001", "status": "completed", "amount": "100.50", "currency": "INR"})
    assert sim.handle("POST", "/transfers", transfer, "t1") == (status, body)
    assert len(sim.state()["transfers"]) == 1
    assert sim.handle("GET", "/transfers/TR-000001")[1]["amount_minor"] == 10050


def test_deposits_verify_only_when_known_matching_and_not_claimed_before(sim):
    verify = {"reference": "UTR123456", "amount": "500.00", "currency": "INR"}
    assert sim.handle("POST", "/deposits/verify", verify, "v1") == (404, {"error": "deposit 'UTR123456' is unknown to the bank"})
    sim.add_deposit("UTR123456", "500.00", "INR")
    wrong = sim.handle("POST", "/deposits/verify", {**verify, "amount": "600"}, "v0")
    assert wrong == (422, {"error": "deposit 'UTR123456' is 500.00 INR, not 600.00 INR"})
    ok = (200, {"reference": "UTR123456", "verified": True, "amount": "500.00", "currency": "INR"})
    assert sim.handle("POST", "/deposits/verify", verify, "v1") == ok
    assert sim.handle("POST", "/deposits/verify", verify, "v1") == ok  # the same request again: replayed
    assert sim.handle("POST", "/deposits/verify", verify, "v2") == (409, {"error": "deposit 'UTR123456' was already claimed"})


def test_secrets_are_kept_only_as_digests_and_masks(sim):
    sim.handle("POST", "/principals", PRINCIPAL, "k1")
    sim.handle("POST", "/beneficiaries", {"principal_id": "P1", **ACCOUNT}, "k2")
    assert sim.handle("PUT", "/voucher-restrictions/GC1", {"upi_vpas": PRINCIPAL["upi_vpas"]}, "k3") == (
        200, {"program_id": "GC1", "count": 2, "version": 1})
    dumped = json.dumps(sim.state())
    for secret in ("beanthere@okhdfc", "bt2@ybl", "50100123456789", "HDFC0001234"):
        assert secret not in dumped
    assert sim.state()["principals"]["P1"]["upi_vpas"] == ["be***@okhdfc", "bt***@ybl"]
    assert sim.state()["beneficiaries"]["P1"]["account"] == "**********6789"
    assert sim.restriction_allows("GC1", "bt2@ybl") and not sim.restriction_allows("GC1", "other@ybl")


def test_unknown_paths_methods_and_missing_fields(sim):
    assert sim.handle("POST", "/nope") == (404, {"error": "POST /nope: no such endpoint"})
    assert sim.handle("DELETE", "/principals") == (405, {"error": "DELETE /principals: no such endpoint"})
    assert sim.handle("POST", "/principals", {"principal_id": "P1"}) == (422, {"error": "legal_name: is required"})


def test_client_retries_5xx_with_backoff_then_succeeds(sim, client):
    sim.inject("/principals", status=500, times=2)
    r = client.post("/principals", json=PRINCIPAL, headers={"Idempotency-Key": "k1"})
    assert (r.status_code, r.json()["partner_ref"]) == (201, "PR-000001")
    assert sim.calls("k1") == 3


def test_client_gives_up_after_its_retries_and_never_retries_4xx(sim, client):
    sim.inject("/principals", status=503, times=5)
    r = client.post("/principals", json=PRINCIPAL, headers={"Idempotency-Key": "k1"})
    assert (r.status_code, r.json(), sim.calls("k1")) == (503, {"error": "injected failure 503"}, 3)
    r = client.post("/programs/GC9/principals", json={"principal_ids": ["P1"]}, headers={"Idempotency-Key": "k2"})
    assert (r.status_code, sim.calls("k2")) == (404, 1)


def test_connection_errors_are_retried_with_growing_backoff(tmp_path):
    with serving(Simulator()) as gone:
        pass  # the server has stopped: nothing listens on its port any more
    slept = []
    transport = RetryTransport(httpx.HTTPTransport(), retries=3, backoff=0.1, sleep=slept.append)
    with httpx.Client(base_url=gone, transport=transport) as c, pytest.raises(httpx.ConnectError):
        c.get("/healthz")
    assert len(slept) == 3
    assert 0.05 <= slept[0] <= 0.15 and 0.1 <= slept[1] <= 0.3 and 0.2 <= slept[2] <= 0.6


def test_a_late_answer_times_out_but_the_work_was_done_once(sim, sim_url, tmp_path):
    settings = make_settings(tmp_path, OPS_PARTNER_URL=sim_url)
    sim.inject("/programs", delay=1.0, times=1)
    program = {"program_id": "GC1", "name": "Festive", "currency": "INR"}
    with partner_client(settings, HttpOptions(timeout=0.2, retries=2, backoff=0.01)) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post("/programs", json=program, headers={"Idempotency-Key": "p1"})
        assert sim.calls("p1") == 1  # a read timeout is not retried by the client
        r = c.post("/programs", json=program, headers={"Idempotency-Key": "p1"})
    assert (r.status_code, r.json()["partner_ref"]) == (201, "GC-000001")
    assert list(sim.state()["programs"]) == ["GC1"] and sim.calls("p1") == 2


def test_control_endpoints_over_http(sim, client):
    assert client.post("/_sim/deposits", json={"reference": "UTR9", "amount": "1.00", "currency": "INR"}).status_code == 201
    assert client.post("/_sim/faults", json={"path": "/wallets", "status": 502, "times": 1}).status_code == 201
    assert client.post("/wallets", json={}).status_code == 422  # the client retried past the one 502
    assert client.post("/_sim/faults", json={"path": "/wallets"}).json() == {"error": "inject: give either status or delay"}
    assert client.get("/_sim/state").json()["deposits"]["UTR9"]["amount_minor"] == 100
    assert client.post("/principals", content=b"not json").json() == {"error": "body: is not JSON"}


def test_sandbox_answers_without_a_server_and_keeps_one_world_per_home(tmp_path):
    settings = make_settings(tmp_path / "home")
    with partner_client(settings, FAST) as partner, bank_client(settings, FAST) as bank:
        assert str(partner.base_url) == "http://partner.sandbox"
        r = partner.post("/principals", json=PRINCIPAL, headers={"Idempotency-Key": "k1"})
        assert (r.status_code, r.json()["partner_ref"]) == (201, "PR-000001")
        bank.post("/_sim/deposits", json={"reference": "UTR777777", "amount": "10", "currency": "INR"})
    assert sandbox(settings) is sandbox(settings)
    # Another process opens the same state file: it sees the same world (and the deterministic ids).
    other = Simulator(state_file=tmp_path / "home" / "sandbox" / "partners.json")
    assert other.calls("k1") == 1 and "UTR777777" in other.state()["deposits"]
    assert other.handle("POST", "/principals", PRINCIPAL, "k1")[1]["partner_ref"] == "PR-000001"
    assert "beanthere@okhdfc" not in (tmp_path / "home" / "sandbox" / "partners.json").read_text()


def test_bulk_payouts_answer_each_item_and_never_pay_a_reference_twice(sim):
    def item(ref, business="B1", amount="10.00"):
        return {"business_id": business, "reference": ref, "currency": "EUR", "amount": amount}

    sim.block("B9")
    status, reply = sim.handle("POST", "/payouts/batch", {"items": [
        item("r1"), item("r2", amount="1.001"), item("r3", business="B9")]})
    assert status == 200
    assert [(i["reference"], i["status"]) for i in reply["items"]] == [
        ("r1", "paid"), ("r2", "rejected"), ("r3", "rejected")]
    assert "3 decimals, EUR allows 2" in reply["items"][1]["error"] and "blocked" in reply["items"][2]["error"]
    _, again = sim.handle("POST", "/payouts/batch", {"items": [item("r1"), item("r1", amount="11.00")]})
    assert [i["status"] for i in again["items"]] == ["paid", "rejected"]
    assert again["items"][0]["payout_id"] == reply["items"][0]["payout_id"]
    assert len(sim.state()["payouts"]) == 1
    _, looked = sim.handle("POST", "/payouts/lookup", {"references": ["r1", "r2"]})
    assert [(i["reference"], i["status"]) for i in looked["items"]] == [("r1", "paid"), ("r2", "absent")]
    _, odd = sim.handle("POST", "/payouts/batch", {"items": [[1], item("r4")]})
    assert [(i["reference"], i["status"]) for i in odd["items"]] == [(None, "rejected"), ("r4", "paid")]
    too_many = sim.handle("POST", "/payouts/batch", {"items": [item(str(i)) for i in range(1001)]})
    assert too_many[0] == 422
