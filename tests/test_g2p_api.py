"""The G2P Partner API over HTTP (TestClient, SQLite and PostgreSQL): the OpenG2P header convention, every
error code of its endpoints as a rjct, bearer role + detached JWS body signature, malformed bodies."""

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from ops_pipeline.api.app import create_app
from ops_pipeline.auth import mint_token
from ops_pipeline.disbursements import partner_keys, programs
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings

TODAY = datetime.now(UTC).date()
TOMORROW = (TODAY + timedelta(days=1)).isoformat()
UNKNOWN = "00000000-0000-4000-8000-000000000000"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def pem(private) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def client(tmp_path, db_url):
    ws = Workspace(make_settings(tmp_path / "home", db_url))
    ws.init()
    programs.add_program(ws, mnemonic="CT1", name="Cash transfer", sponsor_bank_code="EXAMPLE_BANK",
                         sponsor_account="ACC-1", currency="KES", actor="cli:ops")
    partner_keys.add_key(ws, "mis1", "RS256", pem(RSA_KEY), "cli:ops")
    partner_keys.add_key(ws, "mis2", "ES256", pem(EC_KEY), "cli:ops")
    with TestClient(create_app(ws.settings)) as c:
        c.ws = ws
        yield c
    ws.close()


def sign(body: bytes, key=RSA_KEY, alg="RS256") -> str:
    return jwt.api_jws.encode(body, key, algorithm=alg, is_payload_detached=True)


def post(client, path, message, *, partner="mis1", key=RSA_KEY, alg="RS256", body=None, signature=None,
         role="partner"):
    body = body if body is not None else json.dumps(
        {"header": {"message_id": "m-1", "message_ts": "2026-12-06T00:00:00Z", "action": path},
         "message": message}).encode()
    headers = {"Authorization": f"Bearer {mint_token(client.ws.settings, role, partner)}",
               "Content-Type": "application/json",
               "Signature": signature if signature is not None else sign(body, key, alg)}
    return client.post(f"/g2p-bridge/{path}", content=body, headers=headers)


def ok(response) -> dict | list:
    assert response.status_code == 200, response.text
    header = response.json()["header"]
    assert header["status"] == "succ", response.json()
    return response.json()["message"]


def rjct(response) -> str:
    assert response.status_code == 200, response.text
    header = response.json()["header"]
    assert header["status"] == "rjct", response.json()
    return header["status_reason_message"]


ENVELOPE = {"benefit_program_mnemonic": "CT1", "disbursement_frequency": "Monthly", "cycle_code_mnemonic": "2026-12",
            "number_of_beneficiaries": 3, "number_of_disbursements": 3, "total_disbursement_amount": 300.5,
            "disbursement_schedule_date": TOMORROW}


def envelope(client, **change) -> str:
    return ok(post(client, "create_disbursement_envelope", {**ENVELOPE, **change}))["disbursement_envelope_id"]


def items(env_id, *amounts):
    return [{"disbursement_envelope_id": env_id, "beneficiary_id": f"B{i}", "beneficiary_name": f"Name {i}",
             "disbursement_amount": a, "narrative": "Dec"} for i, a in enumerate(amounts)]


def test_partner_flow_succ_with_the_header_convention(client):
    r = post(client, "create_disbursement_envelope", ENVELOPE)
    header, env = r.json()["header"], ok(r)
    assert (header["message_id"], header["action"], header["status_reason_message"]) == (
        "m-1", "create_disbursement_envelope", None)
    assert abs(datetime.fromisoformat(header["message_ts"]) - datetime.now(UTC)) < timedelta(seconds=30)
    assert env["total_disbursement_amount"] == "300.50" and env["cancellation_status"] == "Not_Cancelled"
    env_id = env["disbursement_envelope_id"]
    made = ok(post(client, "create_disbursements", items(env_id, 100.25, "100.25", 100)))
    assert ok(post(client, "create_disbursements", items(env_id, 100.25, "100.25", 100))) == made  # a retry
    assert [m["response_error_codes"] for m in made] == [[], [], []]
    assert [m["disbursement_amount"] for m in made] == ["100.25", "100.25", 100]  # echoed exactly
    status = ok(post(client, "get_disbursement_envelope_status", env_id))
    assert (status["number_of_disbursements_received"], status["total_disbursement_amount_received"]) == (3, "300.50")
    assert (status["funds_available_with_bank"], status["funds_available_attempts"]) == ("PENDING_CHECK", 0)
    assert [s["step"] for s in status["steps"]] == ["funds_check", "funds_block"]
    ids = [m["disbursement_id"] for m in made]
    got = ok(post(client, "get_disbursement_status", ids))
    assert [(g["disbursement_id"], g["disbursement_amount"], g["status"]) for g in got] == [
        (ids[0], "100.25", "RECEIVED"), (ids[1], "100.25", "RECEIVED"), (ids[2], "100.00", "RECEIVED")]
    control = ok(post(client, "get_disbursement_batch_control", made[0]["disbursement_batch_control_id"]))
    assert (control["number_of_disbursements"], control["total_disbursement_amount"]) == (3, "300.50")
    assert [(s["step"], s["status"], s["attempts"]) for s in control["steps"]] == [
        ("fa_resolution", "PENDING", 0), ("disburse", "PENDING", 0), ("notify", "PENDING", 0)]
    cancelled = ok(post(client, "cancel_disbursements", [{"disbursement_id": ids[0]}]))
    assert cancelled == [{"disbursement_id": ids[0], "cancellation_status": "CANCELLED", "response_error_codes": []}]
    status = ok(post(client, "get_disbursement_envelope_status", {"disbursement_envelope_id": env_id}))
    assert (status["number_of_disbursements_received"], status["total_disbursement_amount_received"]) == (2, "200.25")
    amended = ok(post(client, "amend_disbursement_envelope",
                      {"disbursement_envelope_id": env_id, "total_disbursement_amount": "400"}))
    assert amended["total_disbursement_amount"] == "400.00"
    gone = ok(post(client, "cancel_disbursement_envelope", {"disbursement_envelope_id": env_id}))
    assert gone["cancellation_status"] == "Cancelled"


def test_every_envelope_error_code(client):
    cases = [({"benefit_program_mnemonic": ""}, "INVALID_PROGRAM_MNEMONIC"),
             ({"benefit_program_mnemonic": "NOPE"}, "INVALID_PROGRAM_MNEMONIC"),
             ({"disbursement_frequency": "Hourly"}, "INVALID_DISBURSEMENT_FREQUENCY"),
             ({"cycle_code_mnemonic": None}, "INVALID_CYCLE_CODE_MNEMONIC"),
             ({"number_of_beneficiaries": 0}, "INVALID_NO_OF_BENEFICIARIES"),
             ({"number_of_disbursements": "3"}, "INVALID_NO_OF_DISBURSEMENTS"),
             ({"total_disbursement_amount": -1}, "INVALID_TOTAL_DISBURSEMENT_AMOUNT"),
             ({"total_disbursement_amount": 0.001}, "INVALID_TOTAL_DISBURSEMENT_AMOUNT"),
             ({"disbursement_currency_code": "USD"}, "INVALID_DISBURSEMENT_CURRENCY_CODE"),
             ({"disbursement_schedule_date": "2020-01-01"}, "INVALID_DISBURSEMENT_SCHEDULE_DATE")]
    for change, code in cases:
        r = post(client, "create_disbursement_envelope", {**ENVELOPE, **change})
        assert rjct(r) == code, change
        assert r.json()["message"] == {} and r.json()["header"]["status_reason_detail"]
    env_id, due = envelope(client), envelope(client, disbursement_schedule_date=TODAY.isoformat())
    assert rjct(post(client, "cancel_disbursement_envelope", {"disbursement_envelope_id": UNKNOWN})) == (
        "DISBURSEMENT_ENVELOPE_NOT_FOUND")
    assert rjct(post(client, "cancel_disbursement_envelope", {"disbursement_envelope_id": 12})) == (
        "INVALID_DISBURSEMENT_ENVELOPE_ID")
    assert rjct(post(client, "amend_disbursement_envelope", {"disbursement_envelope_id": due,
                                                             "number_of_disbursements": 4})) == (
        "DISBURSEMENT_ENVELOPE_DATE_PASSED")
    assert rjct(post(client, "get_disbursement_envelope_status", "x")) == "INVALID_DISBURSEMENT_ENVELOPE_ID"
    # Another partner's envelope does not exist for this one.
    assert rjct(post(client, "get_disbursement_envelope_status", env_id, partner="mis2", key=EC_KEY,
                     alg="ES256")) == "DISBURSEMENT_ENVELOPE_NOT_FOUND"
    ok(post(client, "cancel_disbursement_envelope", {"disbursement_envelope_id": env_id}))
    assert rjct(post(client, "cancel_disbursement_envelope", {"disbursement_envelope_id": env_id})) == (
        "DISBURSEMENT_ENVELOPE_ALREADY_CANCELED")


def test_every_disbursement_error_code(client):
    env_id, other, due = envelope(client), envelope(client), envelope(client, disbursement_schedule_date=str(TODAY))
    r = post(client, "create_disbursements", [
        {**items(env_id, 0)[0]}, {**items(env_id, 1)[0], "beneficiary_id": ""},
        {**items(env_id, 1)[0], "beneficiary_name": 5}, {**items(env_id, 1)[0], "narrative": ""},
        {**items(env_id, 1)[0], "disbursement_envelope_id": None}, "not an object"])
    assert rjct(r) == "INVALID_DISBURSEMENT_PAYLOAD"
    assert [m["response_error_codes"] for m in r.json()["message"]] == [
        ["INVALID_DISBURSEMENT_AMOUNT"], ["INVALID_BENEFICIARY_ID"], ["INVALID_BENEFICIARY_NAME"],
        ["INVALID_NARRATIVE"], ["INVALID_DISBURSEMENT_ENVELOPE_ID"],
        ["INVALID_DISBURSEMENT_ENVELOPE_ID", "INVALID_BENEFICIARY_ID", "INVALID_BENEFICIARY_NAME",
         "INVALID_NARRATIVE", "INVALID_DISBURSEMENT_AMOUNT"]]
    assert rjct(post(client, "create_disbursements", items(env_id, 1) + items(other, 1))) == "MULTIPLE_ENVELOPES_FOUND"
    assert rjct(post(client, "create_disbursements", items(UNKNOWN, 1))) == "DISBURSEMENT_ENVELOPE_NOT_FOUND"
    assert rjct(post(client, "create_disbursements", items(env_id, 1, 1, 1, 1))) == (
        "NO_OF_DISBURSEMENTS_EXCEEDS_DECLARED")
    assert rjct(post(client, "create_disbursements", items(env_id, 300, 0.51))) == (
        "TOTAL_DISBURSEMENT_AMOUNT_EXCEEDS_DECLARED")
    ids = [m["disbursement_id"] for m in ok(post(client, "create_disbursements", items(env_id, 1, 2)))]
    due_ids = [m["disbursement_id"] for m in ok(post(client, "create_disbursements", items(due, 1)))]
    other_ids = [m["disbursement_id"] for m in ok(post(client, "create_disbursements", items(other, 1)))]
    assert rjct(post(client, "cancel_disbursements", [{"disbursement_id": UNKNOWN}])) == "INVALID_DISBURSEMENT_ID"
    assert rjct(post(client, "cancel_disbursements", ids[:1] + other_ids)) == "MULTIPLE_ENVELOPES_FOUND"
    assert rjct(post(client, "cancel_disbursements", due_ids)) == "DISBURSEMENT_ENVELOPE_SCHEDULE_DATE_REACHED"
    ok(post(client, "cancel_disbursements", ids[:1]))
    r = post(client, "cancel_disbursements", [*ids, None])
    assert rjct(r) == "INVALID_DISBURSEMENT_PAYLOAD"
    assert [m["response_error_codes"] for m in r.json()["message"]] == [
        ["DISBURSEMENT_ALREADY_CANCELED"], [], ["INVALID_DISBURSEMENT_ID"]]
    assert rjct(post(client, "get_disbursement_status", [ids[1], UNKNOWN])) == "INVALID_DISBURSEMENT_ID"
    assert rjct(post(client, "get_disbursement_batch_control", UNKNOWN)) == "INVALID_DISBURSEMENT_BATCH_CONTROL_ID"
    ok(post(client, "cancel_disbursement_envelope", {"disbursement_envelope_id": other}))
    assert rjct(post(client, "create_disbursements", items(other, 1))) == "DISBURSEMENT_ENVELOPE_ALREADY_CANCELED"


def test_malformed_bodies_are_rjct_naming_the_field(client):
    cases = [(b"{not json", "INVALID_REQUEST_BODY"), (b"[1, 2]", "INVALID_REQUEST_BODY"),
             (b'{"message": {}}', "INVALID_REQUEST_HEADER"),
             (b'{"header": {"action": "a"}, "message": {}}', "INVALID_MESSAGE_ID"),
             (b'{"header": {"message_id": "m", "action": 5}, "message": {}}', "INVALID_ACTION"),
             (b'{"header": {"message_id": "m"}}', "INVALID_REQUEST_MESSAGE"),
             (b'{"header": {"message_id": "m"}, "message": [1]}', "INVALID_REQUEST_MESSAGE"),
             (b'{"header": {"message_id": "m"}, "message": {"number_of_beneficiaries": 1e400}}',
              "INVALID_PROGRAM_MNEMONIC"),
             (b'{"header": {"message_id": "m"}, "message": {}}', "INVALID_PROGRAM_MNEMONIC")]
    for body, code in cases:
        assert rjct(post(client, "create_disbursement_envelope", None, body=body)) == code, body
    r = post(client, "create_disbursement_envelope", None, body=b'{"header": {"message_id": "m", "action": "x"}}')
    assert (r.json()["header"]["message_id"], r.json()["header"]["action"]) == ("m", "x")
    assert rjct(post(client, "create_disbursements", {"a": 1})) == "INVALID_REQUEST_MESSAGE"
    assert rjct(post(client, "create_disbursements", [])) == "INVALID_DISBURSEMENT_PAYLOAD"
    assert rjct(post(client, "get_disbursement_status", "x")) == "INVALID_REQUEST_MESSAGE"
    assert rjct(post(client, "get_disbursement_status", [{"disbursement_id": 7}])) == "INVALID_DISBURSEMENT_ID"


def test_signature_and_role_are_required(client):
    body = json.dumps({"header": {"message_id": "m"}, "message": ENVELOPE}).encode()
    path = "create_disbursement_envelope"
    assert post(client, path, None, body=body, signature="").json()["code"] == "SIGNATURE_REQUIRED"
    tampered = body.replace(b"300.5", b"900.5")
    r = post(client, path, None, body=tampered, signature=sign(body))
    assert (r.status_code, r.json()["code"]) == (401, "INVALID_SIGNATURE")
    wrong_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r = post(client, path, None, body=body, signature=sign(body, wrong_key))
    assert (r.status_code, r.json()["code"]) == (401, "INVALID_SIGNATURE")
    r = post(client, path, None, body=body, partner="mis2", signature=sign(body))  # mis1's key, mis2's token
    assert (r.status_code, r.json()["code"]) == (401, "INVALID_SIGNATURE")
    attached = jwt.api_jws.encode(body, RSA_KEY, algorithm="RS256")  # not detached
    assert post(client, path, None, body=body, signature=attached).status_code == 401
    hs = jwt.api_jws.encode(body, "secret-secret-secret-secret-secret", algorithm="HS256", is_payload_detached=True)
    assert post(client, path, None, body=body, signature=hs).status_code == 401
    assert post(client, path, None, body=body, role="ops").status_code == 403
    r = client.post(f"/g2p-bridge/{path}", content=body, headers={"Signature": sign(body),
                                                                    "Content-Type": "application/json"})
    assert r.status_code == 401
    assert ok(post(client, path, None, body=body))["total_disbursement_amount"] == "300.50"
    assert ok(post(client, path, ENVELOPE, partner="mis2", key=EC_KEY, alg="ES256"))
    # A partner key must be of the algorithm's kind.
    with pytest.raises(Exception, match="ES256"):
        partner_keys.add_key(client.ws, "mis3", "ES256", pem(RSA_KEY), "cli:ops")
