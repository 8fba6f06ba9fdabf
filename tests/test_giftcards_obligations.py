"""Obligations to principals: the math, the payment job against the simulator over HTTP, and confirmation
(bank status and statement), with tickets for failures and mismatches."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import dagster as dg
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from assets.giftcards.obligations import principal_payments_sensor
from definitions import defs
from ops_pipeline import analytics, audit
from ops_pipeline.api.app import create_app
from ops_pipeline.auth import mint_token
from ops_pipeline.crypto import cipher
from ops_pipeline.db.schema import outbox, tickets
from ops_pipeline.errors import Conflict
from ops_pipeline.giftcards import kinds, obligations, vouchers
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.actions import ActionContext
from ops_pipeline.jobqueue.jobtypes import JOB_TYPES
from ops_pipeline.jobqueue.model import State
from ops_pipeline.jobqueue.queue import FourEyes
from ops_pipeline.jobqueue.worker import Worker
from ops_pipeline.partners import Clients
from ops_pipeline.recon import payouts
from ops_pipeline.statements.intake import load_statement
from ops_pipeline.tickets import sources
from ops_pipeline.workspace import Workspace
from resources.ops import OpsResource
from tests import giftcard_samples as samples
from tests import test_jobqueue_worker as worker_tests
from tests.conftest import make_settings
from tests.test_tickets_cli import run as cli

PRINCIPAL, PROGRAM = "P-CAFE-01", "GC-ORION-FESTIVE"
ws, queue = worker_tests.ws, worker_tests.queue  # a workspace whose bank is the simulator over HTTP


@pytest.fixture
def worker(ws, queue):
    w = Worker(ws, "w1", queue=queue, http=worker_tests.FAST)
    yield w
    w.close()


@pytest.fixture
def today(ws):
    return datetime.now(ws.settings.tz).date()


@pytest.fixture
def redeemed(ws):
    """3 x 500.00 and 2 x 1000.00 redeemed, one 500.00 distributed only; commission 2.345 %, discount 1 %."""
    samples.seed(ws)
    kinds.update(ws, kinds.PRINCIPALS, PRINCIPAL, {"terms": {"commission_percent": "2.345",
                                                             "discount_percent": "1", "settlement_days": 3}},
                 "ops:asha")
    issued = [*vouchers.issue(ws, PROGRAM, "500.00", 4, "487.50", "ops:asha", "D-GIFTLY", distributed=True),
              *vouchers.issue(ws, PROGRAM, "1000.00", 2, "975.00", "ops:asha", "D-GIFTLY", distributed=True)]
    for v in issued[1:]:
        vouchers.transition(ws, v["voucher_id"], "redeemed", "pos:orion")


def test_the_amount_owed_is_exact_per_voucher_and_computed_once(ws, redeemed, today):
    [o] = obligations.compute(ws, PRINCIPAL, today, today, "ops:asha")
    # Commission per 500.00 voucher: 2.345 % of 50000 = 1172.5 -> 1173 (half up); per 1000.00: 2345.
    assert {k: o[k] for k in ("principal_id", "currency", "vouchers", "gross", "commission", "discount",
                              "amount", "status", "attempt", "due_on")} == {
        "principal_id": PRINCIPAL, "currency": "INR", "vouchers": 5, "gross": "3500.00",
        "commission": "82.09", "discount": "35.00", "amount": "3382.91", "status": "open", "attempt": 0,
        "due_on": (today + timedelta(days=3)).isoformat()}
    assert o["obligation_id"] == obligations.obligation_id(PRINCIPAL, today, today, "INR")

    assert obligations.compute(ws, PRINCIPAL, today, today, "ops:bob") == [o]  # idempotent
    assert obligations.compute(ws, PRINCIPAL, today - timedelta(days=9), today - timedelta(days=9), "x") == []
    with pytest.raises(Conflict, match=f"overlaps obligation {o['obligation_id']}"):
        obligations.compute(ws, PRINCIPAL, today - timedelta(days=1), today, "ops:asha")
    with ws.engine.connect() as conn:
        trail = audit.history(conn, obligations.ENTITY, o["obligation_id"])
    assert [(t["action"], t["actor"], t["after"]["amount_minor"]) for t in trail] == [
        ("compute", "ops:asha", 338291)]


def pay(ws, worker, o, approver="bob"):
    job, _ = service.create_job(ws, type="principal_obligation_payment", actor="alice", attributes={
        "obligation_id": o["obligation_id"], "currency": o["currency"], "amount": o["amount"]})
    assert job.state == State.AWAITING_APPROVAL
    service.approve_job(ws, job.id, approver)
    while worker.run_once(5).claimed:
        pass
    return service.get_job(ws, job.id)


def principal_tickets(ws):
    t = tickets.c
    with ws.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(t.reference, t.status).where(
            t.source == obligations.TICKET_SOURCE).order_by(t.id))]


def load(ws, sim, name):
    return load_statement(ws, sim.transfer_statement("mt940").encode(), name, "ops:asha")


def test_paid_only_when_the_bank_completed_it_and_the_statement_shows_it(ws, sim, worker, redeemed, today):
    [o] = obligations.compute(ws, PRINCIPAL, today, today, "ops:asha")
    key = o["obligation_id"]
    job, _ = service.create_job(ws, type="principal_obligation_payment", actor="alice", attributes={
        "obligation_id": key, "currency": "INR", "amount": "3382.91"})
    with pytest.raises(FourEyes, match="another person must approve"):
        service.approve_job(ws, job.id, "alice")
    service.cancel_job(ws, job.id, "alice", "created by the four-eyes check")

    wrong = pay(ws, worker, {**o, "amount": "3382.90"})
    assert (wrong.state, wrong.last_error) == (State.FAILED, "validate_obligation: amount: obligation "
                                               f"{key} is 3382.91 INR, not 3382.90 INR")
    done = pay(ws, worker, o)
    assert (done.state, list(done.progress)) == (State.COMPLETED, ["validate_obligation", "initiate_transfer"])
    transfer_id = done.progress["initiate_transfer"]["transfer_id"]
    [transfer] = [t for t in sim.state()["transfers"].values() if t.get("reference") == key]
    assert (transfer["amount_minor"], transfer["status"]) == (338291, "pending")
    assert obligations.get(ws, key)["status"] == "sent"

    assert [c.outcome for c in obligations.confirm(ws, "ops:asha")] == ["pending"]
    sim.settle_transfer(key)
    assert [c.outcome for c in obligations.confirm(ws, "ops:asha")] == ["awaiting_statement"]
    load(ws, sim, "transfers-1.mt940")
    [paid] = obligations.confirm(ws, "ops:asha")
    assert (paid.outcome, obligations.get(ws, key)["status"]) == ("paid", "paid")
    assert obligations.confirm(ws, "ops:asha") == []  # twice: nothing more

    # Neither the same job's actions again (a worker died before saving its progress) nor a second job send
    # a second transfer.
    attributes = JOB_TYPES[done.type].open(done.attributes, cipher(ws.settings))
    ctx = ActionContext(ws, done, attributes, {}, Clients(ws.settings))
    rerun = {a.name: a.run(ctx) for a in JOB_TYPES[done.type].actions}
    assert rerun["initiate_transfer"] == {"transfer_id": transfer_id, "status": "sent before"}
    again = pay(ws, worker, o)
    assert (again.state, again.last_error) == (State.FAILED, f"validate_obligation: obligation_id: obligation "
                                               f"{key} is paid by job {done.id}")
    assert [t["reference"] for t in sim.state()["transfers"].values()] == [key]
    assert sim.calls(f"job-{done.id}-initiate_transfer") == 1
    assert principal_tickets(ws) == []

    # The payouts recon does not take the principal transfer for a payout of ours: no break.
    with ws.lake.connect("bank_statement_entries") as con:
        assert con.execute("SELECT customer_reference, amount_minor FROM lake_bank_statement_entries"
                           ).fetchall() == [(key, 338291)]
    assert set(payouts.run(ws, today, actor="ops:asha", dry_run=True).counts.values()) == {0}
    with analytics.connect(ws, operational=True) as con:
        assert con.execute("SELECT obligation_id, amount, status, transfer_id, overdue "
                           "FROM principal_obligations").fetchall() == [
            (key, Decimal("3382.91"), "paid", transfer_id, False)]
    with ws.engine.connect() as conn:
        actions = [(t["action"], t["actor"]) for t in audit.history(conn, obligations.ENTITY, key)]
    assert actions == [("compute", "ops:asha"), ("transfer_requested", f"job:{done.id}"),
                       ("sent", f"job:{done.id}"), ("paid", "ops:asha")]


def test_a_failed_transfer_or_a_statement_mismatch_opens_a_ticket_and_is_not_paid(ws, sim, worker, redeemed,
                                                                                   today, monkeypatch):
    [o] = obligations.compute(ws, PRINCIPAL, today, today, "ops:asha")
    key = o["obligation_id"]
    first = pay(ws, worker, o)
    settled = httpx.post(f"{ws.settings.bank_url}/_sim/transfers/settle",
                         json={"reference": key, "status": "failed", "reason": "AC04 account closed"})
    assert settled.json() == {"transfer_id": first.progress["initiate_transfer"]["transfer_id"]}
    assert defs.get_sensor_def("principal_payments_sensor") is principal_payments_sensor
    monkeypatch.setenv("OPS_BANK_URL", ws.settings.bank_url)  # the Dagster sensor confirms, twice
    ops = OpsResource(ops_home=str(ws.home), database_url=ws.settings.database_url)
    for expected in ("1 failed", "none sent"):
        with dg.build_sensor_context(resources={"ops": ops}) as context:
            assert principal_payments_sensor(context).skip_message == (
                f"principal obligations confirmed: {expected}")
    failed = obligations.get(ws, key)
    assert (failed["status"], failed["note"]) == ("failed", f"obligation {key} of {PRINCIPAL}: transfer "
                                                  f"{first.progress['initiate_transfer']['transfer_id']} of "
                                                  "3382.91 INR failed: AC04 account closed")
    assert principal_tickets(ws) == [(key, "open")]
    with ws.engine.connect() as conn:
        alerts = conn.execute(select(outbox.c.event, outbox.c.subject).where(
            outbox.c.event == "ticket.opened")).all()
    assert len(alerts) == 1 and key in alerts[0].subject

    # Paid again by a new job (attempt 2); the bank books less than was sent: not paid, a ticket.
    records_before = principal_tickets(ws)
    sources.resolve_tickets_for(ws, obligations.TICKET_SOURCE, [key], "ops:asha", "sent again")
    second = pay(ws, worker, o)
    assert second.state == State.COMPLETED and obligations.get(ws, key)["attempt"] == 2
    sim.settle_transfer(key, booked_amount="3380.00")
    load(ws, sim, "transfers-2.mt940")
    for _ in range(2):
        [c] = obligations.confirm(ws, "ops:asha")
    assert c.outcome == "mismatch" and "the statement shows 3380.00 INR" in c.detail
    assert obligations.get(ws, key)["status"] == "sent"
    assert principal_tickets(ws) == [*[(r, "resolved") for r, _ in records_before], (key, "open")]


def test_obligations_over_http_by_role(ws, redeemed, today):
    def call(method, path, role="ops", **kwargs):
        token = mint_token(ws.settings, role, f"{role}:kim")
        return client.request(method, f"/api/giftcards/obligations{path}",
                              headers={"Authorization": f"Bearer {token}"}, **kwargs)

    period = {"principalId": PRINCIPAL, "periodStart": today.isoformat(), "periodEnd": today.isoformat()}
    with TestClient(create_app(ws.settings)) as client:
        assert call("POST", "", "analyst", json=period).status_code == 403
        assert call("POST", "", "finance", json=period).status_code == 403
        made = call("POST", "", json=period)
        assert made.status_code == 200, made.text
        [o] = made.json()["obligations"]
        assert (o["amount"], o["commission"], o["status"]) == ("3382.91", "82.09", "open")
        for role in ("ops", "finance", "analyst"):
            assert call("GET", f"/{o['obligationId']}", role).json() == o
        listed = call("GET", "", "analyst", params={"principalId": PRINCIPAL, "status": "open"}).json()
        assert listed == {"obligations": [o], "nextCursor": None}
        bad = call("POST", "", json={**period, "periodEnd": "2020-01-01"})
        assert (bad.status_code, bad.json()["error"]) == (
            400, f"period_end: 2020-01-01 is before period_start {today}")
        assert call("GET", "/GCO-NOPE", "finance").status_code == 404
        assert call("GET", "", params={"status": "lost"}).status_code == 400
        confirmed = call("POST", f"/{o['obligationId']}/confirm")
        assert (confirmed.json()["outcome"], confirmed.json()["detail"]) == (None, "not sent: nothing to confirm")
        assert call("POST", f"/{o['obligationId']}/confirm", "finance").status_code == 403
        assert call("POST", "/GCO-NOPE/confirm").status_code == 404


def test_obligations_from_the_command_line(tmp_path):
    home = tmp_path / "home"
    ws = Workspace(make_settings(home))
    ws.init()
    try:
        samples.seed(ws)
        [v] = vouchers.issue(ws, PROGRAM, "1000.00", 1, "975.00", "ops:asha", "D-GIFTLY", distributed=True)
        vouchers.transition(ws, v["voucher_id"], "redeemed", "pos:orion")
        today = datetime.now(ws.settings.tz).date()
    finally:
        ws.close()
    day, due = today.isoformat(), (today + timedelta(days=1)).isoformat()  # settlement_days 1 by default
    # 1000.00 less 2.5 % commission and 1 % discount (the sample tenant's terms)
    out = cli(home, "obligations", "compute", PRINCIPAL, "--from", day, "--to", day, "--format", "csv")
    key = obligations.obligation_id(PRINCIPAL, today, today, "INR")
    assert out.splitlines()[1] == f"{key},{PRINCIPAL},{day},{day},INR,1,1000.00,25.00,10.00,965.00,open,{due}"
    assert '"status": "open"' in cli(home, "obligations", "show", key)
    assert cli(home, "obligations", "confirm") == "obligation_id  outcome  detail\n"  # none sent
    assert cli(home, "obligations", "pay", key, "--actor", "asha") == (
        f"job 1: principal_obligation_payment Awaiting Approval (965.00 INR to {PRINCIPAL})\n")
    assert cli(home, "obligations", "compute", PRINCIPAL, "--from", day, "--to", "2020-01-01", code=1) == (
        f"error: period_end: 2020-01-01 is before period_start {day}\n")
