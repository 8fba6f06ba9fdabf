"""Workers against the simulator over real HTTP on 127.0.0.1, on SQLite and PostgreSQL: every job type end
to end, retries and failures, a worker killed mid-job, concurrent workers, the wallet-low rule."""

import copy
import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import update

from ops_pipeline import analytics
from ops_pipeline.crypto import cipher
from ops_pipeline.db.schema import jobs
from ops_pipeline.errors import InvalidInput
from ops_pipeline.jobqueue import rules, service
from ops_pipeline.jobqueue.actions import ActionContext, CreditWalletInLedger
from ops_pipeline.jobqueue.jobtypes import JOB_TYPES
from ops_pipeline.jobqueue.model import State
from ops_pipeline.jobqueue.queue import JobQueue
from ops_pipeline.jobqueue.worker import Worker, run_pool
from ops_pipeline.ledger.balances import get_balances
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.partners import Clients, HttpOptions
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings

FAST = HttpOptions(timeout=5.0, retries=1, backoff=0.01)
PRINCIPAL, PROGRAM, DISTRIBUTOR, DEPOSIT = "P-CAFE-01", "GC-ORION-FESTIVE", "D-GIFTLY", "UTR2026112100001"


@pytest.fixture
def ws(tmp_path, db_url, sim_url):
    workspace = Workspace(make_settings(tmp_path / "home", db_url, OPS_PARTNER_URL=sim_url, OPS_BANK_URL=sim_url))
    workspace.init()
    yield workspace
    workspace.close()


@pytest.fixture
def queue(ws):
    """The engine with a short retry backoff, so a job's five attempts take a fraction of a second."""
    return JobQueue(ws.engine, backoff_base=0.02, backoff_cap=0.1)


def create(ws, type_name, **changes):
    attributes = copy.deepcopy(JOB_TYPES[type_name].example) | changes
    job, _ = service.create_job(ws, type=type_name, attributes=attributes, actor="alice")
    return job


def drain(ws, worker, timeout=30.0):
    """Run `worker` until no automated job is left to run."""
    deadline = time.monotonic() + timeout
    while service.pending(ws):
        assert time.monotonic() < deadline, "jobs still pending"
        if not worker.run_once(10).claimed:
            time.sleep(0.02)


def partner_world(sim):
    """The partner and bank already know the principal, the program and the distributor (with wallet, mandate)."""
    account = {"account_holder": "X", "account_number": "123456789", "ifsc": "HDFC0001234"}
    for path, body in [
        ("/principals", {"principal_id": PRINCIPAL, "legal_name": "Bean There", "upi_vpas": ["bt@ybl"]}),
        ("/beneficiaries", {"principal_id": PRINCIPAL, **account}),
        ("/programs", {"program_id": PROGRAM, "name": "Festive", "currency": "INR"}),
        ("/distributors", {"distributor_id": DISTRIBUTOR, "legal_name": "Giftly", "programs": [{"program_id": PROGRAM}]}),
        ("/wallets", {"distributor_id": DISTRIBUTOR, "currency": "INR"}),
        ("/mandates", {"distributor_id": DISTRIBUTOR, **account}),
    ]:
        assert sim.handle("POST", path, body)[0] == 201, path


def wallet_minor(ws):
    return get_balances(ws, DISTRIBUTOR, "INR")[0].settled_minor


def test_every_job_type_end_to_end(ws, sim, queue):
    sim.add_deposit(DEPOSIT, "25000.00", "INR")
    # voucher_distribution needs an assignment (tests/test_giftcards_jobs.py), principal_obligation_payment
    # an obligation (tests/test_giftcards_obligations.py), daily_reconciliation a portal export
    # (tests/test_recon_job.py)
    skipped = ("manual", "voucher_distribution", "principal_obligation_payment", "daily_reconciliation")
    jobs = {name: create(ws, name) for name in JOB_TYPES if name not in skipped}
    assert jobs["principal_onboarding"].state == State.AWAITING_APPROVAL
    service.approve_job(ws, jobs["principal_onboarding"].id, "bob")
    drain(ws, Worker(ws, "w1", queue=queue, http=FAST))

    for name, job in jobs.items():
        done = service.get_job(ws, job.id)
        assert (done.state, done.attempts, done.last_error) == (State.COMPLETED, 1, None), name
        assert list(done.progress) == [a.name for a in JOB_TYPES[name].actions]
    st = sim.state()
    assert st["principals"][PRINCIPAL]["upi_vpas"] == ["be***@okhdfc", "be***@ybl"]
    assert st["principals"][PRINCIPAL]["commission_percent"] == "2.5"
    assert st["beneficiaries"][PRINCIPAL]["account"] == "**********6789"
    assert st["programs"][PROGRAM]["principal_ids"] == [PRINCIPAL]
    assert st["programs"][PROGRAM]["pricing"]["denominations"] == ["500.00", "1000.00", "2000.00"]
    assert st["distributors"][DISTRIBUTOR]["programs"] == [{"program_id": PROGRAM, "commission_percent": "3"}]
    assert st["mandates"][DISTRIBUTOR]["account"] == "********2345"
    assert st["deposits"][DEPOSIT]["claimed_by"] == f"job-{jobs['distributor_wallet_topup'].id}"
    wallet = st["wallets"][DISTRIBUTOR]
    assert (wallet["balance_minor"], [c["reference"] for c in wallet["credits"]]) == (6_500_000, [DEPOSIT, "COL-000001"])
    assert [(t["principal_id"], t["amount_minor"]) for t in st["transfers"].values()] == [(PRINCIPAL, 1_250_000)]
    assert sim.restriction_allows(PROGRAM, "beanthere@ybl") and sim.restriction_allows(PROGRAM, "beanthere.g12@okhdfc")
    assert set(sim.calls().values()) == {1}  # every action called once, each with its own key
    assert wallet_minor(ws) == 6_500_000
    entries = analytics.connect(ws).sql(
        "SELECT falcon_operation_id, source, type, external_reference, amount FROM balance_operations ORDER BY 1"
    ).fetchall()
    topup, refill = jobs["distributor_wallet_topup"].id, jobs["distributor_wallet_replenishment"].id
    assert entries == sorted([
        (f"job-{topup}-credit_ledger", "ADJUSTMENT", "wallet_topup", DEPOSIT, Decimal("25000.00")),
        (f"job-{refill}-credit_ledger", "ADJUSTMENT", "wallet_topup", "COL-000001", Decimal("40000.00")),
    ])


def test_a_top_up_credits_the_wallet_exactly_once(ws, sim, queue):
    partner_world(sim)
    sim.add_deposit(DEPOSIT, "25000.00", "INR")
    sim.inject(f"/wallets/{DISTRIBUTOR}/credits", status=500, times=1000)
    job = create(ws, "distributor_wallet_topup")
    worker = Worker(ws, "w1", queue=queue, http=FAST)
    drain(ws, worker)
    failed = service.get_job(ws, job.id)
    assert (failed.state, failed.attempts) == (State.FAILED, 5)
    assert failed.last_error == f"credit_wallet: partner POST /wallets/{DISTRIBUTOR}/credits answered 500: injected failure 500"
    assert list(failed.progress) == ["verify_deposit", "credit_ledger"]
    assert wallet_minor(ws) == 2_500_000  # credited once, although the job ran five times

    sim.clear_faults()
    service.retry_job(ws, job.id, "bob")
    drain(ws, worker)
    done = service.get_job(ws, job.id)
    assert (done.state, list(done.progress)) == (State.COMPLETED, ["verify_deposit", "credit_ledger", "credit_wallet"])
    assert wallet_minor(ws) == 2_500_000
    assert sim.state()["wallets"][DISTRIBUTOR]["balance_minor"] == 2_500_000
    assert sim.calls(f"job-{job.id}-verify_deposit") == 1
    assert sim.calls(f"job-{job.id}-credit_wallet") == 5 * 2 + 1

    # Even if the ledger action ran again for this job (progress lost), the entry id makes it a no-op.
    attributes = JOB_TYPES[done.type].open(done.attributes, cipher(ws.settings))
    ctx = ActionContext(ws, done, attributes, {"verify_deposit": {"reference": DEPOSIT}}, Clients(ws.settings))
    assert CreditWalletInLedger().run(ctx)["posted"] == 0
    assert wallet_minor(ws) == 2_500_000

    # Another job for the same deposit is refused by the bank, for good (a 4xx is not retried).
    twice = create(ws, "distributor_wallet_topup")
    drain(ws, worker)
    refused = service.get_job(ws, twice.id)
    assert (refused.state, refused.attempts) == (State.FAILED, 1)
    assert refused.last_error == f"verify_deposit: bank POST /deposits/verify answered 409: deposit '{DEPOSIT}' was already claimed"
    assert wallet_minor(ws) == 2_500_000


def test_partner_500s_are_retried_then_the_job_fails_with_the_error_kept(ws, sim, queue):
    partner_world(sim)
    sim.inject("/programs", status=500, times=1000)
    failing = create(ws, "gift_card_program_creation", program_id="GC-NEW")
    sim.inject("/transfers", status=503, times=2)
    recovering = create(ws, "fund_transfer_to_principal")
    drain(ws, Worker(ws, "w1", queue=queue, http=HttpOptions(timeout=5.0, retries=1, backoff=0.01)))

    job = service.get_job(ws, failing.id)
    error = "create_program: partner POST /programs answered 500: injected failure 500"
    assert (job.state, job.attempts, job.last_error, job.progress) == (State.FAILED, 5, error, {})
    assert [h["reason"] for h in job.history if h["to_state"] in ("Created", "Failed")][1:] == [
        f"attempt {n} failed: {error}" for n in range(1, 5)] + [f"attempt 5 of 5 failed: {error}"]
    assert sim.calls(f"job-{failing.id}-create_program") == 10  # 5 attempts x (1 try + 1 client retry)
    assert "GC-NEW" not in sim.state()["programs"]

    ok = service.get_job(ws, recovering.id)
    assert (ok.state, ok.attempts) == (State.COMPLETED, 2)  # two 503s: a client retry, then a job retry
    assert len(sim.state()["transfers"]) == 1


def test_partner_timeouts_are_retried_then_fail_and_the_late_work_counts_once(ws, sim, queue):
    partner_world(sim)
    sim.inject("/transfers", delay=0.5, times=1000)
    job = create(ws, "fund_transfer_to_principal")
    drain(ws, Worker(ws, "w1", queue=queue, http=HttpOptions(timeout=0.1, retries=2, backoff=0.01)))
    failed = service.get_job(ws, job.id)
    assert (failed.state, failed.attempts) == (State.FAILED, 5)
    assert failed.last_error == "transfer_funds: bank POST /transfers: timed out (ReadTimeout)"
    assert sim.calls(f"job-{job.id}-transfer_funds") == 5  # read timeouts: retried by the job, not the client
    assert len(sim.state()["transfers"]) == 1  # the bank paid once; the other four calls were replays


def test_a_4xx_fails_the_job_at_once(ws, sim, queue):
    job = create(ws, "fund_transfer_to_principal", principal_id="P-NOBODY")
    drain(ws, Worker(ws, "w1", queue=queue, http=FAST))
    failed = service.get_job(ws, job.id)
    assert (failed.state, failed.attempts) == (State.FAILED, 1)
    assert failed.last_error == "transfer_funds: bank POST /transfers answered 422: principal 'P-NOBODY' has no registered bank account"


def test_heartbeats_keep_the_lease_through_a_slow_action(ws, sim, queue):
    partner_world(sim)
    sim.inject("/transfers", delay=1.2, times=1)
    job = create(ws, "fund_transfer_to_principal")
    rescued, stop = [], threading.Event()

    def rescuer():
        while not stop.wait(0.1):
            rescued.extend(queue.rescue()[0])

    thread = threading.Thread(target=rescuer)
    thread.start()
    try:
        counts = Worker(ws, "w1", lease_seconds=0.6, queue=queue, http=FAST).run_once(1)
    finally:
        stop.set()
        thread.join()
    assert (counts.completed, counts.outcomes, rescued) == (1, {job.id: "completed"}, [])
    assert service.get_job(ws, job.id).attempts == 1


WORKER_SCRIPT = """
from ops_pipeline.jobqueue.worker import Worker
from ops_pipeline.workspace import Workspace
Worker(Workspace.from_env(), "victim", lease_seconds=1.0).run_once(1)
"""


def test_a_killed_worker_is_rescued_and_no_action_runs_twice(ws, sim, queue):
    job = create(ws, "principal_onboarding")
    service.approve_job(ws, job.id, "bob")
    sim.inject("/beneficiaries", delay=30, times=1)  # the second action answers (far too) late
    s = ws.settings
    env = {**os.environ, "OPS_HOME": str(s.home), "OPS_DATABASE_URL": s.database_url,
           "OPS_PARTNER_URL": s.partner_url, "OPS_BANK_URL": s.bank_url}
    victim = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT], env=env)
    try:
        deadline = time.monotonic() + 30
        while sim.calls(f"job-{job.id}-register_beneficiary") == 0:
            assert victim.poll() is None and time.monotonic() < deadline, "the worker never reached the slow action"
            time.sleep(0.02)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    held = service.get_job(ws, job.id)
    assert (held.state, held.lease_owner, list(held.progress)) == (State.IN_PROGRESS, "victim", ["create_principal"])

    deadline = time.monotonic() + 10
    while job.id not in queue.rescue()[0]:  # once the lease has run out
        assert time.monotonic() < deadline, "the rescuer never took the job back"
        time.sleep(0.1)
    sim.clear_faults()
    drain(ws, Worker(ws, "w2", queue=queue, http=FAST))

    done = service.get_job(ws, job.id)
    assert (done.state, done.attempts) == (State.COMPLETED, 2)
    assert ("In Progress", "Created", "rescuer", "worker 'victim' stopped (lease expired)") in [
        (h["from_state"], h["to_state"], h["actor"], h["reason"]) for h in done.history]
    assert sim.calls(f"job-{job.id}-create_principal") == 1  # done before the kill: not repeated
    assert sim.calls(f"job-{job.id}-register_beneficiary") == 2  # in flight at the kill: asked again ...
    st = sim.state()
    assert (len(st["principals"]), len(st["beneficiaries"]), st["seq"]["beneficiaries"]) == (1, 1, 1)  # ... done once


def test_concurrent_workers_never_process_a_job_twice(ws, sim, queue):
    n = 40
    ids = [create(ws, "voucher_restriction_push", program_id=f"GC-{i:03d}").id for i in range(n)]
    sim.inject("/voucher-restrictions", delay=0.01, times=10_000)  # keep the workers overlapping
    totals = run_pool(ws, 4, threading.Event(), 0.02, until_idle=True, http=FAST, queue=queue, name="pool")
    assert (totals.claimed, totals.completed, totals.failed, totals.lost) == (n, n, 0, 0)
    claimers = []
    for job_id in ids:
        job = service.get_job(ws, job_id)
        claims = [h["actor"] for h in job.history if h["reason"] == "claimed"]
        assert (job.state, len(claims)) == (State.COMPLETED, 1)
        claimers += claims
    assert len(set(claimers)) > 1
    assert sorted(sim.calls().values()) == [1] * n
    assert {r["version"] for r in sim.state()["restrictions"].values()} == {1}


def test_the_wallet_low_rule_creates_one_replenishment_job_never_two(ws, sim, queue):
    thresholds = rules.parse_thresholds(
        [{"distributor_id": DISTRIBUTOR, "currency": "INR", "threshold": "10000.00", "target": "50000.00"}])
    [first] = rules.wallet_low(ws, thresholds)
    assert (first.subject, first.observed, first.created) == (f"{DISTRIBUTOR}/INR", Decimal("0.00"), True)
    job = service.get_job(ws, first.job_id)
    assert (job.type, job.created_by, job.created_by_kind, job.priority) == (
        "distributor_wallet_replenishment", "rule:wallet-low", "rule", "High")
    assert job.attributes["amount"] == "50000.00"

    outcomes, barrier = [], threading.Barrier(4)

    def evaluate():
        barrier.wait()
        outcomes.extend(rules.wallet_low(ws, thresholds))

    threads = [threading.Thread(target=evaluate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {(o.job_id, o.created) for o in outcomes} == {(first.job_id, False)}
    assert len(service.list_jobs(ws, type="distributor_wallet_replenishment").jobs) == 1

    partner_world(sim)
    drain(ws, Worker(ws, "w1", queue=queue, http=FAST))
    assert service.get_job(ws, first.job_id).state == State.COMPLETED
    assert wallet_minor(ws) == 5_000_000
    [fine] = rules.wallet_low(ws, thresholds)
    assert (fine.observed, fine.job_id, fine.created) == (Decimal("50000.00"), None, False)

    spend = Entry("ADJUSTMENT", "spend-1", DISTRIBUTOR, "INR", -4_500_000, "voucher_sale")
    post_entries(ws, [spend], ingest_id="test")
    [low] = rules.wallet_low(ws, thresholds)
    assert low.created and low.job_id != first.job_id
    assert service.get_job(ws, low.job_id).attributes["amount"] == "45000.00"


def test_wallet_thresholds_are_validated():
    with pytest.raises(InvalidInput, match=r"^thresholds\[0\]: target 5 must be above threshold 10; "
                                        r"thresholds\[1\]\.distributor_id: is required$"):
        rules.parse_thresholds([{"distributor_id": "D1", "threshold": "10", "target": "5"}, {"threshold": "1", "target": "2"}])


def test_attributes_that_no_longer_open_fail_the_job_for_good_without_showing_values(ws, sim, queue, tmp_path):
    job = create(ws, "fund_transfer_to_principal")
    with ws.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job.id).values(attributes={**job.attributes, "amount": "-1"}))
    sealed = create(ws, "voucher_restriction_push")
    settings = make_settings(ws.home, ws.settings.database_url, OPS_ENCRYPTION_KEY=Fernet.generate_key().decode(),
                             OPS_PARTNER_URL=ws.settings.partner_url, OPS_BANK_URL=ws.settings.bank_url)
    other = Workspace(settings)  # the same database, with another encryption key
    try:
        drain(other, Worker(other, "w1", queue=queue, http=FAST))
    finally:
        other.close()
    bad = service.get_job(ws, job.id)
    assert (bad.state, bad.attempts) == (State.FAILED, 1)
    assert bad.last_error == "attributes: stored attributes do not fit the fund_transfer_to_principal model at amount"
    locked = service.get_job(ws, sealed.id)
    assert (locked.state, locked.last_error) == (State.FAILED, "attributes: a sealed value does not open with this encryption key")
    assert sim.calls() == {}
