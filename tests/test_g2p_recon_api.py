"""`POST /g2p-bridge/upload_mt940` end to end (TestClient, SQLite and PostgreSQL): the partner token only, a
statement reconciled into `get_disbursement_status`, a wrong account and a malformed file rejected."""

from datetime import UTC, datetime

from sqlalchemy import update

from ops_pipeline.api.guard import MAX_BODY_BYTES
from ops_pipeline.auth import mint_token
from ops_pipeline.db.schema import g2p_disbursements
from ops_pipeline.ledger.entries import Entry, post_entries
from tests import test_g2p_api
from tests.test_g2p_api import ENVELOPE, items, ok, post
from tests.test_g2p_recon import ledger_entries, mt940

client = test_g2p_api.client  # the fixture: a TestClient on a workspace with program CT1 (ACC-1, KES)


def upload(api, data: bytes, role="partner", field="statement_file"):
    token = mint_token(api.ws.settings, role, "mis1")
    return api.post("/g2p-bridge/upload_mt940", headers={"Authorization": f"Bearer {token}"},
                       files={field: ("sponsor.sta", data, "application/octet-stream")})


def answer(response) -> tuple[str, str | None, dict]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["header"]["action"] == "upload_mt940"
    return body["header"]["status"], body["header"]["status_reason_message"], body["message"]


def test_upload_mt940_reconciles_into_the_disbursement_status(client):
    env_id = ok(post(client, "create_disbursement_envelope", ENVELOPE))["disbursement_envelope_id"]
    ids = [m["disbursement_id"] for m in ok(post(client, "create_disbursements",
                                                 items(env_id, "100.25", "100.25", "100")))]
    with client.ws.engine.begin() as conn:  # what the disburse step does
        conn.execute(update(g2p_disbursements).values(status="SHIPPED", shipped_at=datetime.now(UTC)))
    post_entries(client.ws, [Entry("PAYOUT", d, "g2p:CT1", "KES", -a, "g2p_disbursement")
                             for d, a in zip(ids, (10_025, 10_025, 10_000), strict=True)], "disburse-test")
    data = mt940("S-1", ("D", "100,25", ids[0], None), ("D", "100,25", ids[1], None),
                 ("D", "100,25", ids[1], None), ("RD", "100,25", ids[1], "ACCOUNT_DECEASED"))

    assert upload(client, data, role="ops").status_code == 403
    assert client.post("/g2p-bridge/upload_mt940", files={"statement_file": ("s", data)}).status_code == 401
    assert answer(upload(client, mt940("S-X", ("D", "1,00", ids[0], None), account="ACC-9"))) == (
        "rjct", "INVALID_ACCOUNT_NUMBER", {"statement_id": None, "response_error_code": "INVALID_ACCOUNT_NUMBER"})
    status, code, _ = answer(upload(client, data, field="file"))
    assert (status, code) == ("rjct", "STATEMENT_UPLOAD_ERROR")
    bad = upload(client, data.replace(b"D100,25NTRF", b"D100,2,5NTRF", 1))
    assert answer(bad)[:2] == ("rjct", "STATEMENT_UPLOAD_ERROR")
    assert bad.json()["header"]["status_reason_detail"].startswith("line 5: :61: amount:")

    for _ in range(2):  # the same file twice: the same statement, nothing more
        status, code, message = answer(upload(client, data))
        assert (status, code) == ("succ", None)
        assert ({k: v for k, v in message.items() if k != "statement_id"}, len(message["statement_id"])) == (
            {"response_error_code": None, "number_of_entries": 4, "number_of_remittances": 2,
             "number_of_reversals": 1, "number_of_exceptions": 1}, 64)
    assert ledger_entries(client.ws, "g2p-reversal:") == [
        (f"g2p-reversal:{ids[1]}", "g2p:CT1", "KES", 10_025, "g2p_reversal")]

    got = {g["disbursement_id"]: g for g in ok(post(client, "get_disbursement_status", ids))}
    assert [got[i]["status"] for i in ids] == ["RECONCILED", "REVERSED", "SHIPPED"]
    first = got[ids[0]]["disbursement_recon_records"]
    assert [(p["remittance_statement_id"], p["remittance_entry_sequence"], p["remittance_reference_number"],
             p["reversal_found"]) for p in first["disbursement_recon_payloads"]] == [
        (message["statement_id"], 1, "BANK1", False)]
    second = got[ids[1]]["disbursement_recon_records"]
    assert [(p["reversal_found"], p["reversal_entry_sequence"], p["reversal_reason"])
            for p in second["disbursement_recon_payloads"]] == [(True, 4, "ACCOUNT_DECEASED")]
    assert [(e["entry_sequence"], e["error_reason"], e["bank_reference_number"])
            for e in second["disbursement_error_recon_payloads"]] == [(3, "DUPLICATE_DISBURSEMENT", "BANK3")]
    assert (got[ids[1]]["reversal_found"], got[ids[1]]["reversal_reason"]) == (True, "ACCOUNT_DECEASED")
    assert got[ids[2]]["disbursement_recon_records"] == {"disbursement_recon_payloads": [],
                                                         "disbursement_error_recon_payloads": []}
    envelope = ok(post(client, "get_disbursement_envelope_status", env_id))
    assert (envelope["number_of_disbursements_reconciled"], envelope["number_of_disbursements_reversed"]) == (1, 1)


def test_upload_mt940_takes_a_statement_over_the_4_mib_body_limit(client):
    """A sponsor statement of a big envelope passes the body guard (up to `MAX_UPLOAD_BYTES`) and reaches the
    parser; other bodies keep the 4 MiB limit."""
    big = b":20:X\n" + b"x" * (MAX_BODY_BYTES + 1)
    status, code, _ = answer(upload(client, big))
    assert (status, code) == ("rjct", "STATEMENT_UPLOAD_ERROR")
    assert post(client, "get_disbursement_status", ["x" * (MAX_BODY_BYTES + 1)]).status_code == 413
