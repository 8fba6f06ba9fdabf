"""G2P disbursements core on SQLite and PostgreSQL: programs, envelopes, batches, counters and their audit;
concurrent create_disbursements on one envelope never exceed the declaration (PostgreSQL, two threads)."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from ops_pipeline import audit
from ops_pipeline.db.schema import g2p_batch_steps, g2p_disbursements
from ops_pipeline.disbursements import batches, codes, envelopes, programs
from ops_pipeline.disbursements.batches import Item
from ops_pipeline.disbursements.codes import G2PError
from ops_pipeline.errors import Conflict, InvalidInput
from ops_pipeline.workspace import Workspace

TODAY = datetime.now(UTC).date()
TOMORROW = TODAY + timedelta(days=1)


def add_program(ws, mnemonic="CT1", currency="KES", account="ACC-1"):
    return programs.add_program(ws, mnemonic=mnemonic, name="Cash transfer", sponsor_bank_code="EXAMPLE_BANK",
                                sponsor_account=account, currency=currency, actor="cli:ops")


def new_envelope(ws, count=3, total="300.00", when=TOMORROW, program="CT1"):
    return envelopes.create_envelope(ws, program=program, frequency="Monthly", cycle_code="2026-12",
                                     beneficiaries=count, disbursements=count, total=total, schedule_date=when,
                                     actor="partner:mis1")


def items(env_id, *amounts):
    return [Item(env_id, f"B{i}", f"Beneficiary {i}", a, "December transfer") for i, a in enumerate(amounts)]


def code_of(call, *args, **kwargs) -> str:
    with pytest.raises(G2PError) as raised:
        call(*args, **kwargs)
    return raised.value.code


def test_programs_are_configured_once_with_an_iso_currency(ws):
    made = add_program(ws)
    assert made == programs.Program("CT1", "Cash transfer", "EXAMPLE_BANK", "ACC-1", "KES", True)
    with pytest.raises(Conflict):
        add_program(ws, account="ACC-1", mnemonic="CT2")
    with pytest.raises(InvalidInput, match="XXX"):
        add_program(ws, mnemonic="CT3", account="ACC-3", currency="XXX")
    programs.set_active(ws, "CT1", False, "cli:ops")
    assert [p.active for p in programs.list_programs(ws)] == [False]
    assert code_of(new_envelope, ws) == codes.INVALID_PROGRAM_MNEMONIC
    with ws.engine.connect() as conn:
        assert [h["action"] for h in audit.history(conn, "g2p_program", "CT1")] == ["create", "deactivate"]


def test_envelope_fields_are_checked_with_openg2p_codes(ws):
    add_program(ws)
    good = dict(program="CT1", frequency="Monthly", cycle_code="C1", beneficiaries=2, disbursements=2,
                total="10.50", schedule_date=TODAY, actor="partner:mis1")
    cases = [
        ({"program": ""}, codes.INVALID_PROGRAM_MNEMONIC),
        ({"program": "NOPE"}, codes.INVALID_PROGRAM_MNEMONIC),
        ({"frequency": "Hourly"}, codes.INVALID_DISBURSEMENT_FREQUENCY),
        ({"cycle_code": " "}, codes.INVALID_CYCLE_CODE_MNEMONIC),
        ({"beneficiaries": 0}, codes.INVALID_NO_OF_BENEFICIARIES),
        ({"disbursements": True}, codes.INVALID_NO_OF_DISBURSEMENTS),
        ({"total": "-1"}, codes.INVALID_TOTAL_DISBURSEMENT_AMOUNT),
        ({"total": "1.005"}, codes.INVALID_TOTAL_DISBURSEMENT_AMOUNT),  # KES has 2 decimals
        ({"total": 1.5}, codes.INVALID_TOTAL_DISBURSEMENT_AMOUNT),  # a float is never money
        ({"currency": "EUR"}, codes.INVALID_DISBURSEMENT_CURRENCY_CODE),
        ({"schedule_date": TODAY - timedelta(days=1)}, codes.INVALID_DISBURSEMENT_SCHEDULE_DATE),
        ({"schedule_date": "31/12/2026"}, codes.INVALID_DISBURSEMENT_SCHEDULE_DATE),
    ]
    for change, code in cases:
        assert code_of(envelopes.create_envelope, ws, **{**good, **change}) == code, change
    env = envelopes.create_envelope(ws, **{**good, "total": "0"})  # zero and today are allowed
    assert (env.declared_amount_minor, env.schedule_date, env.currency) == (0, TODAY, "KES")
    st = envelopes.envelope_status(ws, env.id)
    assert [(s.step, s.status, s.attempts) for s in st.steps] == [("funds_check", "PENDING", 0),
                                                                   ("funds_block", "PENDING", 0)]
    assert (st.envelope.funds_available, st.envelope.funds_blocked) == ("PENDING_CHECK", "PENDING_CHECK")


def test_cancel_and_amend_envelopes(ws):
    add_program(ws)
    env = new_envelope(ws)
    amended = envelopes.amend_envelope(ws, env.id, disbursements=5, total="500", actor="partner:mis1")
    assert (amended.declared_count, amended.declared_amount_minor, amended.declared_beneficiaries) == (5, 50_000, 3)
    assert code_of(envelopes.amend_envelope, ws, env.id, disbursements=0, actor="x") == codes.INVALID_NO_OF_DISBURSEMENTS
    assert code_of(envelopes.amend_envelope, ws, "nope", actor="x") == codes.INVALID_DISBURSEMENT_ENVELOPE_ID
    # Amend only strictly before the schedule date: an envelope scheduled for today is no longer amendable.
    due = new_envelope(ws, when=TODAY)
    assert code_of(envelopes.amend_envelope, ws, due.id, total="1", actor="x") == codes.DISBURSEMENT_ENVELOPE_DATE_PASSED
    # Not below what was received.
    batches.create_disbursements(ws, items(env.id, "100", "100"), actor="partner:mis1")
    assert code_of(envelopes.amend_envelope, ws, env.id, disbursements=1, actor="x") == codes.INVALID_NO_OF_DISBURSEMENTS
    assert code_of(envelopes.amend_envelope, ws, env.id, total="199.99", actor="x") == (
        codes.INVALID_TOTAL_DISBURSEMENT_AMOUNT)
    # Another partner does not see it.
    assert code_of(envelopes.cancel_envelope, ws, env.id, actor="p", owner="partner:other") == (
        codes.DISBURSEMENT_ENVELOPE_NOT_FOUND)
    cancelled = envelopes.cancel_envelope(ws, env.id, actor="partner:mis1")
    assert cancelled.cancelled and cancelled.cancelled_at is not None
    assert code_of(envelopes.cancel_envelope, ws, env.id, actor="x") == codes.DISBURSEMENT_ENVELOPE_ALREADY_CANCELED
    assert code_of(envelopes.amend_envelope, ws, env.id, total="1", actor="x") == (
        codes.DISBURSEMENT_ENVELOPE_ALREADY_CANCELED)
    with ws.engine.connect() as conn:
        actions = [(h["action"], h["actor"]) for h in audit.history(conn, "g2p_envelope", env.id)]
    assert actions == [("create", "partner:mis1"), ("amend", "partner:mis1"), ("received", "partner:mis1"),
                       ("cancel", "partner:mis1")]


def test_disbursements_move_the_counters_and_cancel_brings_them_back(ws):
    add_program(ws)
    env = new_envelope(ws, count=4, total="1000.00")
    batch = batches.create_disbursements(ws, items(env.id, "100.25", 200, "0.75"), actor="partner:mis1",
                                         message_id="m-1")
    assert (batch.count, batch.amount_minor, len(set(batch.disbursement_ids))) == (3, 30_100, 3)
    e = envelopes.envelope_status(ws, env.id).envelope
    assert (e.received_count, e.received_amount_minor) == (3, 30_100)
    bc = batches.batch_control(ws, batch.id)
    assert [(s.step, s.status, s.attempts, s.latest_error) for s in bc.steps] == [
        ("fa_resolution", "PENDING", 0, None), ("disburse", "PENDING", 0, None), ("notify", "PENDING", 0, None)]
    got = batches.disbursement_status(ws, batch.disbursement_ids[::-1])
    assert [(d.beneficiary_id, d.amount_minor, d.status, d.batch_id) for d in got] == [
        ("B2", 75, "RECEIVED", batch.id), ("B1", 20_000, "RECEIVED", batch.id), ("B0", 10_025, "RECEIVED", batch.id)]

    assert batches.cancel_disbursements(ws, batch.disbursement_ids[:2], actor="partner:mis1") == (
        batch.disbursement_ids[:2])
    e = envelopes.envelope_status(ws, env.id).envelope
    assert (e.received_count, e.received_amount_minor) == (1, 75)
    with pytest.raises(G2PError) as raised:
        batches.cancel_disbursements(ws, [batch.disbursement_ids[0], "x", batch.disbursement_ids[2]], actor="p")
    assert raised.value.code == codes.INVALID_DISBURSEMENT_PAYLOAD
    assert raised.value.item_codes == [[codes.DISBURSEMENT_ALREADY_CANCELED], [codes.INVALID_DISBURSEMENT_ID], []]
    assert envelopes.envelope_status(ws, env.id).envelope.received_count == 1  # all or nothing
    # What was cancelled can be sent again, up to the declaration.
    batches.create_disbursements(ws, items(env.id, "500", "499.25"), actor="partner:mis1")
    e = envelopes.envelope_status(ws, env.id).envelope
    assert (e.received_count, e.received_amount_minor) == (3, 100_000)
    with ws.engine.connect() as conn:
        assert [h["action"] for h in audit.history(conn, "g2p_disbursement", batch.disbursement_ids[0])] == ["cancel"]
        assert [h["action"] for h in audit.history(conn, "g2p_batch", batch.id)] == ["create"]


def test_create_disbursements_is_all_or_nothing_with_per_item_codes(ws):
    add_program(ws)
    env, other = new_envelope(ws), new_envelope(ws)
    bad = [Item(env.id, "B1", "N", "0", "n"), Item(env.id, "", "N", "1", "n"), Item(env.id, "B3", None, "1", "n"),
           Item(env.id, "B4", "N", "1.001", " "), Item(env.id, "B5", "N", "1", "n")]
    with pytest.raises(G2PError) as raised:
        batches.create_disbursements(ws, bad, actor="partner:mis1")
    assert raised.value.code == codes.INVALID_DISBURSEMENT_PAYLOAD
    assert raised.value.item_codes == [[codes.INVALID_DISBURSEMENT_AMOUNT], [codes.INVALID_BENEFICIARY_ID],
                                       [codes.INVALID_BENEFICIARY_NAME],
                                       [codes.INVALID_NARRATIVE, codes.INVALID_DISBURSEMENT_AMOUNT], []]
    mixed = items(env.id, "1") + items(other.id, "1")
    assert code_of(batches.create_disbursements, ws, mixed, actor="p") == codes.MULTIPLE_ENVELOPES_FOUND
    assert code_of(batches.create_disbursements, ws, [*items(env.id, "1"), Item(None, "B", "N", "1", "n")],
                   actor="p") == codes.INVALID_DISBURSEMENT_PAYLOAD
    missing = "00000000-0000-4000-8000-000000000000"
    assert code_of(batches.create_disbursements, ws, items(missing, "1"), actor="p") == (
        codes.DISBURSEMENT_ENVELOPE_NOT_FOUND)
    assert code_of(batches.create_disbursements, ws, items(env.id, *["1"] * 4), actor="p") == (
        codes.NO_OF_DISBURSEMENTS_EXCEEDS_DECLARED)
    assert code_of(batches.create_disbursements, ws, items(env.id, "100", "200.01"), actor="p") == (
        codes.TOTAL_DISBURSEMENT_AMOUNT_EXCEEDS_DECLARED)
    assert code_of(batches.create_disbursements, ws, [], actor="p") == codes.INVALID_DISBURSEMENT_PAYLOAD
    envelopes.cancel_envelope(ws, other.id, actor="p")
    assert code_of(batches.create_disbursements, ws, items(other.id, "1"), actor="p") == (
        codes.DISBURSEMENT_ENVELOPE_ALREADY_CANCELED)
    with ws.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(g2p_disbursements)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(g2p_batch_steps)).scalar() == 0
    assert envelopes.envelope_status(ws, env.id).envelope.received_count == 0


def test_cancel_disbursements_rules(ws):
    add_program(ws)
    env, due = new_envelope(ws), new_envelope(ws, when=TODAY)
    a = batches.create_disbursements(ws, items(env.id, "1"), actor="p").disbursement_ids
    b = batches.create_disbursements(ws, items(due.id, "1"), actor="p").disbursement_ids
    unknown = "00000000-0000-4000-8000-000000000000"
    assert code_of(batches.cancel_disbursements, ws, [unknown], actor="p") == codes.INVALID_DISBURSEMENT_ID
    assert code_of(batches.cancel_disbursements, ws, a + b, actor="p") == codes.MULTIPLE_ENVELOPES_FOUND
    assert code_of(batches.cancel_disbursements, ws, b, actor="p") == codes.DISBURSEMENT_ENVELOPE_SCHEDULE_DATE_REACHED
    assert code_of(batches.cancel_disbursements, ws, a + a, actor="p") == codes.INVALID_DISBURSEMENT_PAYLOAD
    assert code_of(batches.disbursement_status, ws, [unknown]) == codes.INVALID_DISBURSEMENT_ID
    assert code_of(batches.batch_control, ws, unknown) == codes.INVALID_DISBURSEMENT_BATCH_CONTROL_ID


def test_concurrent_batches_never_exceed_the_declaration(tmp_path, pg_url):
    from tests.conftest import make_settings

    ws = Workspace(make_settings(tmp_path / "home", pg_url))
    ws.init()
    try:
        add_program(ws)
        env = new_envelope(ws, count=150, total="150")
        start, outcomes = threading.Barrier(2), []

        def send():
            start.wait()
            for _ in range(3):
                try:
                    outcomes.append(batches.create_disbursements(ws, items(env.id, *["1"] * 40), actor="p").count)
                except G2PError as exc:
                    outcomes.append(exc.code)

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes, key=str) == [40, 40, 40] + [codes.NO_OF_DISBURSEMENTS_EXCEEDS_DECLARED] * 3
        e = envelopes.envelope_status(ws, env.id).envelope
        with ws.engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(g2p_disbursements)).scalar()
        assert (e.received_count, e.received_amount_minor, stored) == (120, 12_000, 120)
    finally:
        ws.close()


def test_a_retried_call_returns_its_batch_and_adds_nothing(ws):
    add_program(ws)
    env = new_envelope(ws)
    first = batches.create_disbursements(ws, items(env.id, "100", "50"), actor="partner:mis1", message_id="m-7")
    again = batches.create_disbursements(ws, items(env.id, "100", "50"), actor="partner:mis1", message_id="m-7")
    assert again == first
    e = envelopes.envelope_status(ws, env.id).envelope
    assert (e.received_count, e.received_amount_minor) == (2, 15_000)
    # The same message id with other items is a mistake, not a retry; another partner's is its own.
    with pytest.raises(G2PError, match="already made batch") as raised:
        batches.create_disbursements(ws, items(env.id, "100", "51"), actor="partner:mis1", message_id="m-7")
    assert raised.value.code == codes.INVALID_DISBURSEMENT_PAYLOAD
    other = batches.create_disbursements(ws, items(env.id, "100"), actor="partner:mis2", message_id="m-7")
    assert other.id != first.id
    assert [d.id for d in batches.disbursement_status(ws, first.disbursement_ids)] == first.disbursement_ids
