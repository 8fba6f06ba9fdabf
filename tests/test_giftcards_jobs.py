"""Gift-card jobs run by a real worker, on SQLite and PostgreSQL: voucher distribution (priced by the
assignment, the wallet debited once across retries, refused when short or unassigned, events in Delta) and
the onboarding and program jobs writing their records."""

import copy
from datetime import date

import pytest
from sqlalchemy import select

from ops_pipeline import audit
from ops_pipeline.crypto import cipher
from ops_pipeline.db.schema import gc_vouchers, ledger_holds
from ops_pipeline.giftcards import assignments, kinds, records
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.actions import ActionContext, ActionError
from ops_pipeline.jobqueue.jobtypes import JOB_TYPES
from ops_pipeline.jobqueue.model import State
from ops_pipeline.jobqueue.worker import Worker
from ops_pipeline.ledger import adjustments
from ops_pipeline.ledger.balances import get_balances
from ops_pipeline.partners import Clients
from tests import giftcard_samples as samples
from tests import test_jobqueue_worker as worker_tests

PROGRAM, DISTRIBUTOR = "GC-ORION-FESTIVE", "D-GIFTLY"
ws, queue = worker_tests.ws, worker_tests.queue  # its fixtures: a workspace whose partner is the simulator


@pytest.fixture
def worker(ws, queue):
    w = Worker(ws, "w1", queue=queue, http=worker_tests.FAST)
    yield w
    w.close()


def run(ws, worker, job_type, actor="alice", **changes):
    attributes = copy.deepcopy(JOB_TYPES[job_type].example) | changes
    job, _ = service.create_job(ws, type=job_type, attributes=attributes, actor=actor)
    if job.state == State.AWAITING_APPROVAL:
        service.approve_job(ws, job.id, "bob")
    while worker.run_once(5).claimed:
        pass
    return service.get_job(ws, job.id)


def fund(ws, amount_minor, reference="UTR-TEST"):
    adjustments.adjust(ws, DISTRIBUTOR, "INR", amount_minor, reference, actor="ops:asha")


def wallet(ws):
    balance = get_balances(ws, DISTRIBUTOR, "INR")[0]
    return balance.settled_minor, balance.available_minor


def stored_vouchers(ws):
    with ws.engine.connect() as conn:
        return conn.execute(select(gc_vouchers.c.voucher_id, gc_vouchers.c.status, gc_vouchers.c.holder_id,
                                   gc_vouchers.c.price_paid_minor)
                            .order_by(gc_vouchers.c.voucher_id)).all()


@pytest.fixture
def assigned(ws):
    samples.seed(ws)
    assignments.assign(ws, {"party_id": DISTRIBUTOR, "program_id": PROGRAM, "discount_percent": "2.5",
                            "starts_on": "2026-01-01"}, "ops:asha")


def test_distribution_debits_the_wallet_once_across_a_retry_and_a_lost_progress(ws, worker, assigned):
    fund(ws, 100_000)  # 1000.00 INR: short of 3 x 487.50
    short = run(ws, worker, "voucher_distribution", count=3)
    assert (short.state, short.attempts) == (State.FAILED, 1)
    assert short.last_error == (f"reserve_wallet: wallet '{DISTRIBUTOR}' is short: available 1000.00 INR, "
                                "needed 1462.50 INR (3 vouchers at 487.50 INR)")
    assert stored_vouchers(ws) == [] and wallet(ws) == (100_000, 100_000)

    fund(ws, 100_000, "UTR-TEST-2")
    service.retry_job(ws, short.id, "bob")
    while worker.run_once(5).claimed:
        pass
    done = service.get_job(ws, short.id)
    assert (done.state, list(done.progress)) == (State.COMPLETED, ["reserve_wallet", "issue_vouchers",
                                                                   "debit_wallet"])
    assert wallet(ws) == (200_000 - 146_250, 200_000 - 146_250)
    issued = stored_vouchers(ws)
    assert [tuple(v)[1:] for v in issued] == [("distributed", DISTRIBUTOR, 48_750)] * 3

    # Had a worker died before saving its progress, the actions would run again: none repeats its effect.
    attributes = JOB_TYPES[done.type].open(done.attributes, cipher(ws.settings))
    ctx = ActionContext(ws, done, attributes, {}, Clients(ws.settings))
    for action in JOB_TYPES[done.type].actions:
        ctx.results[action.name] = action.run(ctx)
    assert ctx.results["debit_wallet"]["posted"] == 0 and ctx.results["issue_vouchers"]["vouchers"] == 3
    assert stored_vouchers(ws) == issued and wallet(ws) == (53_750, 53_750)
    with ws.engine.connect() as conn:
        holds = conn.execute(select(ledger_holds.c.hold_id, ledger_holds.c.status)).all()
    assert [tuple(h) for h in holds] == [(f"job-{done.id}-reserve_wallet", "captured")]

    with ws.lake.connect("voucher_events") as con:
        events = con.sql("SELECT voucher_id, event, from_status, to_status, holder_id, price_paid_minor, "
                         "actor FROM lake_voucher_events ORDER BY voucher_id").fetchall()
    assert events == [(v.voucher_id, "issued", None, "distributed", DISTRIBUTOR, 48_750, f"job:{done.id}")
                      for v in issued]


def test_an_unassigned_distributor_is_refused(ws, worker, assigned):
    fund(ws, 10_000_000)
    early = run(ws, worker, "voucher_distribution", on="2025-12-31")
    assert early.state == State.FAILED and early.last_error == (
        f"reserve_wallet: distributor_id: party '{DISTRIBUTOR}' is not assigned to program '{PROGRAM}' "
        "on 2025-12-31")
    assignments.unassign(ws, 1, "ops:asha", ends_on=date(2026, 6, 30))
    ended = run(ws, worker, "voucher_distribution", on="2026-07-01")
    assert ended.state == State.FAILED and "is not assigned" in ended.last_error
    missing = run(ws, worker, "voucher_distribution", program_id="GC-NONE")
    assert missing.last_error == "reserve_wallet: program_id: no program 'GC-NONE'"
    odd = run(ws, worker, "voucher_distribution", face_value="750", on="2026-06-30")
    assert odd.last_error == f"reserve_wallet: face_value: 750 is not a face value of program '{PROGRAM}'"
    in_force = run(ws, worker, "voucher_distribution", on="2026-06-30", count=2)
    assert in_force.state == State.COMPLETED
    assert len(stored_vouchers(ws)) == 2 and wallet(ws)[0] == 10_000_000 - 2 * 48_750


def test_onboarding_and_program_jobs_create_their_records_audited(ws, worker):
    orphan = run(ws, worker, "principal_onboarding", mall_id="MALL-ORION", unit="G-12")
    assert orphan.state == State.FAILED
    assert orphan.last_error == "record_principal: principal 'P-CAFE-01': mall_id: no principal 'MALL-ORION'"
    records.create(ws, kinds.PRINCIPALS, samples.MALL, "ops:asha")
    service.retry_job(ws, orphan.id, "bob")
    while worker.run_once(5).claimed:
        pass
    assert service.get_job(ws, orphan.id).state == State.COMPLETED

    principal = records.get(ws, kinds.PRINCIPALS, "P-CAFE-01")
    assert (principal["kind"], principal["mall_id"], principal["name"]) == ("tenant", "MALL-ORION",
                                                                            "Bean There Cafe Pvt Ltd")
    assert principal["upi_vpas"] == ["be***@okhdfc", "be***@ybl"]
    assert principal["terms"]["commission_percent"] == "2.5" and principal["created_by"] == f"job:{orphan.id}"
    with ws.engine.connect() as conn:
        trail = audit.history(conn, "gc_principal", "P-CAFE-01")
    assert [(t["action"], t["actor"], t["reason"]) for t in trail] == [
        ("create", f"job:{orphan.id}", f"principal_onboarding job {orphan.id} by alice, approved by bob")]
    assert trail[0]["after"]["bank_account"]["account_number"] == "**********6789"

    program = run(ws, worker, "gift_card_program_creation")
    assert program.state == State.COMPLETED and program.progress["record_program"]["created"] is True
    assert records.get(ws, kinds.PROGRAMS, PROGRAM)["principal_ids"] == ["P-CAFE-01"]
    party = run(ws, worker, "distributor_onboarding")
    assert party.state == State.COMPLETED
    stored = records.get(ws, kinds.PARTIES, DISTRIBUTOR)
    assert (stored["kind"], stored["wallet_account_id"], stored["name"]) == ("distributor", DISTRIBUTOR,
                                                                             "Giftly Distribution LLP")


def test_a_program_job_before_its_principal_fails_or_waits(ws, worker, sim):
    principal = {"principal_id": "P-CAFE-01", "legal_name": "Bean There", "upi_vpas": ["bt@ybl"]}
    assert sim.handle("POST", "/principals", principal)[0] == 201  # the partner knows it, our records do not
    alone = run(ws, worker, "gift_card_program_creation")
    assert alone.state == State.FAILED
    assert alone.last_error == f"record_program: program '{PROGRAM}': principal_ids[0]: no principal 'P-CAFE-01'"

    for data in (samples.MALL, samples.TENANT):  # made by hand: the retry goes on from the failed action
        records.create(ws, kinds.PRINCIPALS, data, "ops:asha")
    service.retry_job(ws, alone.id, "bob")
    while worker.run_once(5).claimed:
        pass
    retried = service.get_job(ws, alone.id)
    assert (retried.state, retried.progress["record_program"]["created"]) == (State.COMPLETED, True)

    # A program job that names the principal job as its prerequisite waits for it, then finds the record.
    onboarding = copy.deepcopy(JOB_TYPES["principal_onboarding"].example) | {"principal_id": "P-NEW"}
    first, _ = service.create_job(ws, type="principal_onboarding", actor="alice", attributes=onboarding)
    program = copy.deepcopy(JOB_TYPES["gift_card_program_creation"].example) | {
        "program_id": "GC-NEW", "principal_ids": ["P-NEW"]}
    then, _ = service.create_job(ws, type="gift_card_program_creation", actor="alice", attributes=program,
                                 depends_on=[first.id])
    assert worker.run_once(5).claimed == 0  # the principal waits for approval, the program for it
    service.approve_job(ws, first.id, "bob")
    while worker.run_once(5).claimed:
        pass
    assert [service.get_job(ws, j.id).state for j in (first, then)] == [State.COMPLETED] * 2
    assert records.get(ws, kinds.PROGRAMS, "GC-NEW")["created_by"] == f"job:{then.id}"


def test_a_program_made_inactive_after_the_reservation_frees_the_wallet(ws, worker, assigned):
    fund(ws, 100_000)
    job, _ = service.create_job(ws, type="voucher_distribution", actor="alice",
                                attributes=JOB_TYPES["voucher_distribution"].example | {"count": 2})
    attributes = JOB_TYPES[job.type].open(job.attributes, cipher(ws.settings))
    ctx = ActionContext(ws, job, attributes, {}, Clients(ws.settings))
    reserve, issue, _ = JOB_TYPES[job.type].actions
    ctx.results["reserve_wallet"] = reserve.run(ctx)
    assert wallet(ws) == (100_000, 100_000 - 97_500)
    kinds.update(ws, kinds.PROGRAMS, PROGRAM, {"status": "inactive"}, "ops:asha")
    with pytest.raises(ActionError, match=f"program_id: program '{PROGRAM}' is inactive") as refused:
        issue.run(ctx)
    assert refused.value.retryable is False and wallet(ws) == (100_000, 100_000)
    with pytest.raises(ActionError, match=f"the reservation job-{job.id}-reserve_wallet is released"):
        issue.run(ctx)  # a retry of the job does not issue without a reservation
    assert stored_vouchers(ws) == []
