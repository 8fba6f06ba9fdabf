"""Job types and the job service: catalog, validation errors naming the field, encryption at rest,
approvals, manual jobs, listing."""

import copy
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from ops_pipeline.crypto import Cipher, DecryptionFailed, cipher, mask_head, mask_tail, mask_vpa
from ops_pipeline.errors import Conflict, InvalidInput
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.jobtypes import AUTOMATED_TYPES, JOB_TYPES, job_types_catalog
from ops_pipeline.jobqueue.model import State
from ops_pipeline.jobqueue.queue import FourEyes
from ops_pipeline.jobqueue.worker import Worker
from tests.conftest import make_settings

TYPES = [
    "principal_onboarding",
    "gift_card_program_creation",
    "distributor_onboarding",
    "distributor_wallet_topup",
    "distributor_wallet_replenishment",
    "fund_transfer_to_principal",
    "voucher_restriction_push",
    "voucher_distribution",
    "principal_obligation_payment",
    "daily_reconciliation",
    "manual",
]
SECRETS = ("beanthere.g12@okhdfc", "beanthere@ybl", "50100123456789", "HDFC0001234", "asha@beanthere.example",
           "+919812345678", "9812345678", "Unit G-12, Orion Mall", "560055")


def example(type_name, **changes):
    attributes = copy.deepcopy(JOB_TYPES[type_name].example)
    attributes.update(changes)
    return attributes


def create(ws, type_name="manual", actor="alice", **kw):
    attributes = kw.pop("attributes", None) or example(type_name)
    return service.create_job(ws, type=type_name, attributes=attributes, actor=actor, **kw)


def test_catalog_lists_every_type_with_its_schema_approval_and_example():
    catalog = {t["type"]: t for t in job_types_catalog()}
    assert list(catalog) == TYPES
    assert [t for t, d in catalog.items() if d["needs_approval"]] == ["principal_onboarding",
                                                                      "principal_obligation_payment"]
    assert set(AUTOMATED_TYPES) == set(TYPES) - {"manual"}
    principal = catalog["principal_onboarding"]
    assert principal["actions"] == ["create_principal", "register_beneficiary", "record_principal"]
    assert catalog["voucher_distribution"]["actions"] == ["reserve_wallet", "issue_vouchers", "debit_wallet"]
    assert principal["sensitive_fields"] == [
        "entity.address.line1", "entity.address.line2", "entity.address.postal_code", "contact.email",
        "contact.phone", "upi_vpas[]", "bank_account.account_number", "bank_account.ifsc"]
    schema = principal["attributes_schema"]
    assert schema["properties"]["upi_vpas"]["items"] == {
        "type": "string", "maxLength": 320, "writeOnly": True, "x-sensitive": "upi_vpa"}
    assert {"principal_id", "entity", "upi_vpas", "bank_account", "commission_percent"} <= set(schema["required"])
    assert catalog["manual"]["attributes_schema"]["required"] == ["title"]
    assert catalog["voucher_restriction_push"]["sensitive_fields"] == ["tenants[].upi_vpas[]"]
    json.dumps(catalog)  # JSON-ready as GET /api/job/types returns it
    for name, t in JOB_TYPES.items():
        assert t.validate(t.example), name


@pytest.mark.parametrize(
    ("type_name", "attributes", "message"),
    [
        ("manual", {"description": "no title"}, "attributes.title: is required"),
        ("manual", {"title": "t", "colour": "red"}, "attributes.colour: is not a known attribute"),
        ("principal_onboarding", example("principal_onboarding", upi_vpas=["ok@ybl", "x"]),
         "attributes.upi_vpas[1]: 'x' is not a valid UPI VPA (handle@provider)"),
        ("principal_onboarding", example("principal_onboarding", upi_vpas=["ok@ybl", "OK@ybl"]),
         "attributes.upi_vpas: 'ok@ybl' is listed twice"),
        ("principal_onboarding", example("principal_onboarding", upi_vpas=[]),
         "attributes.upi_vpas: list should have at least 1 item after validation, not 0"),
        ("voucher_restriction_push", {"program_id": "GC1", "tenants": [{"principal_id": "P1", "upi_vpas": ["a@b", "bad"]}]},
         "attributes.tenants[0].upi_vpas[0]: 'a@b' is not a valid UPI VPA (handle@provider); "
         "attributes.tenants[0].upi_vpas[1]: 'bad' is not a valid UPI VPA (handle@provider)"),
        ("distributor_wallet_topup", example("distributor_wallet_topup", amount="10.001"),
         "attributes.amount: '10.001' has 3 decimals, INR allows 2"),
        ("distributor_wallet_topup", example("distributor_wallet_topup", amount="-5"),
         "attributes.amount: input should be greater than 0 (got '-5')"),
        ("distributor_wallet_topup", example("distributor_wallet_topup", currency="XYZ"),
         "attributes.currency: 'XYZ' is not an ISO 4217 currency"),
        ("fund_transfer_to_principal", {"principal_id": "P1", "amount": "5"},
         "attributes.purpose: is required"),
        ("distributor_onboarding",
         example("distributor_onboarding", bank_account={"account_holder": "G", "account_number": "12", "ifsc": "HDFC0001234"}),
         "attributes.bank_account.account_number: must be 9 to 18 digits"),
        ("gift_card_program_creation", example("gift_card_program_creation", pricing={"min_value": "100"}),
         "attributes.pricing: give denominations, or both min_value and max_value"),
        ("gift_card_program_creation",
         example("gift_card_program_creation", currency="JPY", pricing={"denominations": ["500", "10.5"]}),
         "attributes.pricing: '10.5' has 1 decimals, JPY allows 0"),
    ],
)
def test_validation_errors_name_the_field_and_the_problem(sqlite_ws, type_name, attributes, message):
    with pytest.raises(InvalidInput) as caught:
        service.create_job(sqlite_ws, type=type_name, attributes=attributes, actor="alice")
    assert str(caught.value) == message
    assert service.list_jobs(sqlite_ws).jobs == []


def test_bad_type_priority_expiry_and_body_are_refused(sqlite_ws):
    with pytest.raises(InvalidInput, match=r"^type: 'nope' is not one of principal_onboarding, gift_card_program_creation, "
                                           r"distributor_onboarding, .*, manual$"):
        create(sqlite_ws, "nope", attributes={"title": "t"})
    with pytest.raises(InvalidInput, match=r"^priority: 'Urgent' is not one of High, Medium, Low$"):
        create(sqlite_ws, priority="Urgent")
    past = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(InvalidInput, match=r"^expires_at: .* is not in the future$"):
        create(sqlite_ws, expires_at=past)
    with pytest.raises(InvalidInput, match=r"^expires_at: 2030-01-01T00:00:00 has no time zone$"):
        create(sqlite_ws, expires_at=datetime(2030, 1, 1))
    with pytest.raises(InvalidInput, match=r"^attributes: must be an object, not list$"):
        service.create_job(sqlite_ws, type="manual", attributes=["t"], actor="alice")
    with pytest.raises(InvalidInput, match=r"^actor_kind: 'robot' is not one of person, service, rule$"):
        create(sqlite_ws, actor_kind="robot")
    with pytest.raises(InvalidInput, match=r"^actor: is required$"):
        create(sqlite_ws, actor=" ")


def test_upi_vpas_bank_details_and_contacts_are_encrypted_at_rest_and_masked_in_views(ws):
    job, created = create(ws, "principal_onboarding")
    assert created and job.state == State.AWAITING_APPROVAL
    with ws.engine.connect() as conn:
        raw = conn.execute(text("SELECT CAST(attributes AS TEXT) FROM jobs WHERE id = :id"), {"id": job.id}).scalar()
    assert "Bean There Cafe Pvt Ltd" in raw and '"enc"' in raw
    for secret in SECRETS:
        assert secret not in raw
    view = service.public_view(service.get_job(ws, job.id))
    assert view["attributes"]["upi_vpas"] == ["be***@okhdfc", "be***@ybl"]
    assert view["attributes"]["bank_account"] == {
        "account_holder": "Bean There Cafe Pvt Ltd", "account_number": "**********6789", "ifsc": "HDFC*******"}
    assert view["attributes"]["contact"] == {"name": "Asha Rao", "email": "as***@beanthere.example",
                                             "phone": "*********5678"}
    assert view["attributes"]["entity"]["address"] == {
        "line1": "***", "line2": None, "city": "Bengaluru", "state": "Karnataka", "postal_code": "560***",
        "country": "IN"}
    assert view["state"] == "Awaiting Approval" and view["needs_approval"] is True
    assert view["history"][0] == {"at": view["created_at"], "from_state": None, "to_state": "Awaiting Approval",
                                  "actor": "alice", "reason": "created"}
    dumped = json.dumps(view)
    assert not any(secret in dumped for secret in SECRETS)
    opened = JOB_TYPES["principal_onboarding"].open(job.attributes, cipher(ws.settings))
    assert opened.upi_vpas == ["beanthere.g12@okhdfc", "beanthere@ybl"]
    assert opened.bank_account.account_number == "50100123456789"
    assert (opened.contact.email, opened.contact.phone) == ("asha@beanthere.example", "+919812345678")
    assert (opened.entity.address.line1, opened.entity.address.postal_code) == ("Unit G-12, Orion Mall", "560055")
    with pytest.raises(DecryptionFailed, match="a sealed value does not open with this encryption key"):
        JOB_TYPES["principal_onboarding"].open(job.attributes, Cipher(Fernet.generate_key().decode()))


def test_masks():
    assert (mask_vpa("abcdef@okbank"), mask_tail("123456789012"), mask_head("HDFC0001234")) == (
        "ab***@okbank", "********9012", "HDFC*******")


def test_the_encryption_key_is_kept_per_home(tmp_path):
    a = make_settings(tmp_path / "a")
    assert a.encryption_key == make_settings(tmp_path / "a").encryption_key != make_settings(tmp_path / "b").encryption_key
    token = cipher(a).encrypt("x@ybl")
    assert "x@ybl" not in token and cipher(make_settings(tmp_path / "a")).decrypt(token) == "x@ybl"


def test_idempotency_key_returns_the_live_job(ws):
    first, created = create(ws, idempotency_key="ops-42")
    again, created_again = create(ws, idempotency_key="ops-42", attributes={"title": "something else"})
    assert (created, created_again, again.id, again.attributes) == (True, False, first.id, first.attributes)
    assert first.attributes == {"title": "Call the bank about deposit UTR2026112100001",
                                "description": "Not visible yet; ask the branch."}


def test_four_eyes_approval_and_rejection(ws):
    job, _ = create(ws, "principal_onboarding")
    with pytest.raises(FourEyes, match=f"job {job.id}: approver 'alice' created it"):
        service.approve_job(ws, job.id, "alice")
    approved = service.approve_job(ws, job.id, "bob")
    assert (approved.state, approved.approved_by) == (State.CREATED, "bob")
    other, _ = create(ws, "principal_onboarding", attributes=example("principal_onboarding", principal_id="P2"))
    with pytest.raises(InvalidInput, match="reason: a rejection needs a reason"):
        service.reject_job(ws, other.id, "bob", " ")
    rejected = service.reject_job(ws, other.id, "bob", "KYC documents missing")
    assert (rejected.state, rejected.last_error) == (State.FAILED, "rejected: KYC documents missing")
    cancelled = service.cancel_job(ws, job.id, "carol", "duplicate")
    assert (cancelled.state, cancelled.archived) == (State.FAILED, True)
    assert service.retry_job(ws, job.id, "carol").state == State.CREATED


def test_manual_jobs_are_never_claimed_by_workers_and_are_completed_by_a_person(ws):
    job, _ = create(ws, "manual")
    worker = Worker(ws, "w1")
    assert worker.run_once(5).claimed == 0 and service.claimable(ws) == 0
    with pytest.raises(InvalidInput, match="types: 'manual' is not a type workers run"):
        Worker(ws, "w2", types=["manual"])
    done = service.complete_manual(ws, job.id, "dave", note="called the bank: deposit arrives tomorrow")
    assert (done.state, done.archived, done.attempts) == (State.COMPLETED, True, 1)
    assert done.progress == {"completed_by": "dave", "note": "called the bank: deposit arrives tomorrow"}
    assert [(h["to_state"], h["actor"]) for h in done.history] == [
        ("Created", "alice"), ("In Progress", "dave"), ("Completed", "dave")]
    with pytest.raises(Conflict, match=f"job {job.id}: cannot claim: state is Completed"):
        service.complete_manual(ws, job.id, "dave")
    automated, _ = create(ws, "fund_transfer_to_principal")
    with pytest.raises(Conflict, match=f"job {automated.id}: is a fund_transfer_to_principal job; workers complete it"):
        service.complete_manual(ws, automated.id, "dave")


def test_list_jobs_filters_and_pages_with_a_cursor(ws):
    ids = [create(ws, attributes={"title": f"t{i}"})[0].id for i in range(5)]
    transfer, _ = create(ws, "fund_transfer_to_principal", actor="svc", actor_kind="service", priority="High")
    first = service.list_jobs(ws, type="manual", limit=2)
    assert [j.id for j in first.jobs] == ids[:-3:-1] and first.next_after_id == ids[3]
    second = service.list_jobs(ws, type="manual", limit=2, after_id=first.next_after_id)
    third = service.list_jobs(ws, type="manual", limit=2, after_id=second.next_after_id)
    assert [j.id for j in second.jobs + third.jobs] == ids[2::-1] and third.next_after_id is None
    assert [j.id for j in service.list_jobs(ws, priority="High").jobs] == [transfer.id]
    assert [j.id for j in service.list_jobs(ws, created_by="svc").jobs] == [transfer.id]
    with pytest.raises(InvalidInput, match=r"^type: 'x' is not one of"):
        service.list_jobs(ws, type="x")
    with pytest.raises(InvalidInput, match=r"^limit: 0 is not between 1 and 500$"):
        service.list_jobs(ws, limit=0)
    with pytest.raises(InvalidInput, match=r"^state: 'Done' is not one of"):
        service.list_jobs(ws, state="Done")


def test_an_expired_manual_job_cannot_be_completed(sqlite_ws):
    job, _ = create(sqlite_ws, expires_at=datetime.now(UTC) + timedelta(milliseconds=300))
    time.sleep(0.4)
    with pytest.raises(Conflict, match=f"job {job.id}: expired at "):
        service.complete_manual(sqlite_ws, job.id, "dave")
    assert service.housekeep(sqlite_ws) == {"rescued": [], "failed": [], "expired": [job.id]}
    assert service.get_job(sqlite_ws, job.id).state == State.EXPIRED


@pytest.mark.parametrize(("type_name", "changes", "message"), [
    ("distributor_wallet_topup", {"amount": "1e400"}, "attributes.amount: decimal input should have no more than 19"),
    ("distributor_wallet_topup", {"amount": "9" * 40}, "attributes.amount: decimal input should have no more than 19"),
    ("distributor_wallet_topup", {"amount": 1e400}, "attributes.amount: input should be a finite number"),
    ("distributor_wallet_topup", {"amount": "99999999999999999.99"},
     "attributes.amount: decimal input should have no more than 15 digits before the decimal point"),
    ("distributor_wallet_topup", {"currency": "CLF", "amount": "999999999999999.9999"},
     "attributes.amount: '999999999999999.9999' is too large: CLF amounts are at most 9223372036854775807 minor"),
    ("fund_transfer_to_principal", {"currency": "JPY", "amount": "10.5"},
     "attributes.amount: '10.5' has 1 decimals, JPY allows 0"),
    ("gift_card_program_creation", {"pricing": {"denominations": ["1" + "0" * 30]}},
     "attributes.pricing.denominations[0]: decimal input should have no more than 19"),
    ("gift_card_program_creation", {"discounts": [{"name": "d", "percent": "5", "min_order_value": "1.001"}]},
     "attributes.discounts: '1.001' has 3 decimals, INR allows 2"),
    ("manual", {"title": "x" * 201}, "attributes.title: string should have at most 200 characters"),
    ("principal_onboarding", {"contact": {"name": "A", "email": "a@" + "b" * 300 + ".in", "phone": "+919812345678"}},
     "attributes.contact.email: string should have at most 254 characters"),
    ("voucher_restriction_push", {"tenants": [{"principal_id": "P1", "upi_vpas": ["a" * 400 + "@ybl"]}]},
     "attributes.tenants[0].upi_vpas[0]: string should have at most 320 characters"),
])
def test_amounts_and_strings_are_bounded_with_the_field_named(sqlite_ws, type_name, changes, message):
    with pytest.raises(InvalidInput) as caught:
        create(sqlite_ws, type_name, attributes=example(type_name, **changes))
    assert message in str(caught.value)


def test_every_string_in_every_schema_has_a_max_length_and_amounts_show_their_bounds():
    def strings(schema, path):
        if isinstance(schema, dict):
            if schema.get("type") == "string" and "enum" not in schema and schema.get("format") != "date":
                yield path, schema
            for key, value in schema.items():
                yield from strings(value, f"{path}/{key}")
        elif isinstance(schema, list):
            for i, value in enumerate(schema):
                yield from strings(value, f"{path}[{i}]")

    for t in job_types_catalog():
        unbounded = [p for p, s in strings(t["attributes_schema"], t["type"]) if "maxLength" not in s]
        assert unbounded == [], unbounded
    topup = next(t for t in job_types_catalog() if t["type"] == "distributor_wallet_topup")
    amount = topup["attributes_schema"]["properties"]["amount"]
    assert amount["anyOf"] == [
        {"type": "number", "exclusiveMinimum": 0, "maximum": 99_999_999_999_999},
        {"type": "string", "pattern": r"^[0-9]{1,14}(\.[0-9]{1,4})?$", "maxLength": 19}]
