"""G2P pipeline steps on SQLite and PostgreSQL with the sandbox mapper and sponsor bank: an envelope through
every step (unresolvable beneficiaries, bank failures), stale lease recovery, a disburse step failing after
the bank call then re-run (nothing paid or posted twice), two runners at once (PostgreSQL)."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from ops_pipeline import audit
from ops_pipeline.db.schema import (
    g2p_batch_steps,
    g2p_disbursements,
    g2p_envelope_steps,
    g2p_envelopes,
    g2p_financial_addresses,
    ledger_holds,
    outbox,
)
from ops_pipeline.disbursements import batches, claims, codes, envelopes, funds, pipeline, programs
from ops_pipeline.disbursements.batches import Item
from ops_pipeline.disbursements.connectors import Connectors
from ops_pipeline.disbursements.pipeline import STEPS, eligible, run_step
from ops_pipeline.ledger.balances import get_balances
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.partners.clients import sandbox
from ops_pipeline.partners.g2p_sim import failure_of
from tests.test_g2p_core import code_of

TODAY = datetime.now(UTC).date()
SHARE = 0.4
UNLINKED = {"B0-3", "B1-7"}  # the mapper does not know them
BAD_FA = {"B1-2": "bank_12_x"}  # the mapper answers an FA in no known form


def fa_of(beneficiary: str) -> str:
    n = beneficiary.replace("B", "").replace("-", "")
    kind = int(n) % 3
    if kind == 0:
        return f"bank_9900{n:0>6}_EXB_BR01_savings"
    if kind == 1:
        return f"mobile_25470{n:0>6}_mpesa"
    return f"email_b{n}@example.org_gmail"


def world(ws, batches_of=(10, 10), amount="100.00", account="SPONSOR-1"):
    """A program whose sponsor account and ledger account hold 1,000,000.00 KES; an envelope of
    `batches_of` disbursements due today; the mapper linked for all but `UNLINKED`."""
    programs.add_program(ws, mnemonic="CT1", name="Cash transfer", sponsor_bank_code="EXB",
                         sponsor_account=account, currency="KES", actor="cli:ops")
    sim = sandbox(ws.settings)
    sim.open_account(account, "KES", "1000000.00")
    sim.set_fail_share(SHARE)
    post_entries(ws, [Entry("ADJUSTMENT", "fund-CT1", "g2p:CT1", "KES", 100_000_000, "g2p_funding")], "test")
    total = sum(batches_of) * int(amount.split(".")[0])
    env = envelopes.create_envelope(ws, program="CT1", frequency="Monthly", cycle_code="2026-12",
                                    beneficiaries=sum(batches_of), disbursements=sum(batches_of),
                                    total=f"{total}.00", schedule_date=TODAY, actor="partner:mis1")
    made = []
    for b, size in enumerate(batches_of):
        ids = [f"B{b}-{i}" for i in range(size)]
        for beneficiary in ids:
            if beneficiary not in UNLINKED:
                sim.link_fa(beneficiary, BAD_FA.get(beneficiary, fa_of(beneficiary)), f"Name {beneficiary}")
        made.append(batches.create_disbursements(
            ws, [Item(env.id, i, f"Name {i}", amount, "December") for i in ids], actor="partner:mis1"))
    return sim, env, made


def run_all(ws, worker="w1", **kwargs):
    return {step: run_step(ws, step, worker=worker, limit=100, **kwargs) for step in STEPS}


def rows(ws, table, *where):
    with ws.engine.connect() as conn:
        return conn.execute(select(table).where(*where)).all()


def test_an_envelope_goes_through_every_step(ws):
    sim, env, made = world(ws)
    ran = run_all(ws)
    assert {s: (r.claimed, r.processed, r.errors) for s, r in ran.items()} == {
        "fa_resolution": (2, 2, 0), "funds_check": (1, 1, 0), "funds_block": (1, 1, 0),
        "disburse": (2, 2, 0), "notify": (2, 2, 0)}
    ids = [i for b in made for i in b.disbursement_ids]
    by_id = {r.id: r for r in rows(ws, g2p_disbursements)}
    unresolved = {i for i in ids if by_id[i].beneficiary_id in UNLINKED | set(BAD_FA)}
    failing = {i for i in ids if i not in unresolved and failure_of(i, SHARE)}
    paid = set(ids) - unresolved - failing
    assert failing and paid  # the share makes both kinds
    assert {i for i in ids if by_id[i].status == "UNRESOLVED"} == unresolved
    assert {i for i in ids if by_id[i].status == "FAILED"} == failing
    assert {i for i in ids if by_id[i].status == "SHIPPED"} == paid
    assert all(by_id[i].shipped_at is not None for i in paid)
    assert "not linked" in by_id[made[0].disbursement_ids[3]].latest_error
    assert "known form" in by_id[made[1].disbursement_ids[2]].latest_error
    assert {by_id[i].latest_error for i in failing} <= {"ACCOUNT_CLOSED", "ACCOUNT_NOT_FOUND", "ACCOUNT_DORMANT",
                                                        "ACCOUNT_DECEASED"}
    # Sealed at rest: no account number in clear, a masked form kept.
    fas = rows(ws, g2p_financial_addresses)
    assert len(fas) == 20 - len(unresolved)
    bank = next(f for f in fas if f.fa_type == "BANK_ACCOUNT")
    assert bank.bank_code == "EXB" and bank.branch_code == "BR01" and bank.account_type == "savings"
    assert bank.address["masked"].startswith("*") and "9900" not in bank.address["enc"]
    # The envelope's outcome and counters.
    status = envelopes.envelope_status(ws, env.id)
    assert (status.envelope.funds_available, status.envelope.funds_blocked) == ("FUNDS_AVAILABLE",
                                                                                "FUNDS_BLOCK_SUCCESS")
    assert status.envelope.shipped_count == len(paid)
    # The bank: paid exactly the shipped ones, once; balance and block moved by them.
    state = sim.state()
    bank_paid = {r for r, p in state["g2p_payments"].items() if p["status"] == "paid"}
    assert bank_paid == paid
    account = state["g2p_accounts"]["SPONSOR-1"]
    assert account["balance_minor"] == 100_000_000 - 10_000 * len(paid)
    assert account["blocked_minor"] == 200_000 - 10_000 * len(paid)
    # The ledger: one PAYOUT entry per shipped disbursement; the hold of the block captured at the end.
    entries = _entries(ws)
    assert sorted(entries) == sorted(paid) and set(entries.values()) == {-10_000}
    (hold,) = rows(ws, ledger_holds, ledger_holds.c.merchant_id == "g2p:CT1")
    assert (hold.hold_id, hold.amount_minor, hold.status, hold.reference) == (
        funds.hold_id(env.id), 200_000, "captured", status.envelope.funds_block_reference)
    (balance,) = get_balances(ws, "g2p:CT1", "KES")
    assert (balance.settled_minor, balance.held_minor) == (100_000_000 - 10_000 * len(paid), 0)
    # Notifications: one outbox row per disbursement; every step audited.
    assert len(rows(ws, outbox, outbox.c.entity_type == "g2p_disbursement")) == 20
    with ws.engine.connect() as conn:
        actions = [h["action"] for h in audit.history(conn, "g2p_batch_step", f"{made[0].id}:disburse")]
        assert actions == ["claim", "processed"]
    # Nothing left to do.
    assert {s: pipeline.waiting(ws, s) for s in STEPS} == {key: [] for key in STEPS}
    assert all(r.claimed == 0 for r in run_all(ws).values())


def _entries(ws) -> dict[str, int]:
    import duckdb

    from ops_pipeline.lake.tables import BALANCE_OPERATIONS

    con = duckdb.connect()
    log = ws.lake.relation(con, BALANCE_OPERATIONS.name)
    found = con.sql(f"SELECT falcon_operation_id, amount_minor FROM {log} WHERE merchant_id = 'g2p:CT1' "
                    "AND source = 'PAYOUT'").fetchall()
    return dict(found)


def test_funds_wait_for_a_complete_envelope_and_fail_without_funds(ws):
    sim, _env, _made = world(ws, batches_of=(10,))
    assert run_step(ws, "funds_check", worker="w1").claimed == 1  # complete and due today
    programs.add_program(ws, mnemonic="CT2", name="Other", sponsor_bank_code="EXB", sponsor_account="POOR-1",
                         currency="KES", actor="cli:ops")
    sim.open_account("POOR-1", "KES", "5.00")
    poor = envelopes.create_envelope(ws, program="CT2", frequency="Monthly", cycle_code="C", beneficiaries=2,
                                     disbursements=2, total="20.00", schedule_date=TODAY, actor="partner:mis1")
    assert run_step(ws, "funds_check", worker="w1").claimed == 0  # nothing received yet
    batches.create_disbursements(ws, [Item(poor.id, f"P{i}", "P", "10.00", "n") for i in range(2)],
                                 actor="partner:mis1")
    for _attempt in (1, 2, 3):
        ran = run_step(ws, "funds_check", worker="w1")
        assert (ran.claimed, ran.errors) == (1, 1)
    assert run_step(ws, "funds_check", worker="w1").claimed == 0  # attempts used up
    status = envelopes.envelope_status(ws, poor.id)
    check = next(s for s in status.steps if s.step == "funds_check")
    assert (check.status, check.attempts) == ("ERROR", 3)
    assert check.latest_error.startswith("FUNDS_NOT_AVAILABLE")
    assert status.envelope.funds_available == "FUNDS_NOT_AVAILABLE"
    assert run_step(ws, "funds_block", worker="w1").claimed == 1  # only the first envelope


def test_an_expired_lease_goes_back_to_pending_and_is_done_once(ws):
    _sim, _env, _made = world(ws, batches_of=(5,))
    (stuck,) = claims.claim(ws, "fa_resolution", eligible(ws, "fa_resolution"), worker="dead", limit=5,
                            max_attempts=3, lease_seconds=300)
    assert run_step(ws, "fa_resolution", worker="w2").claimed == 0  # leased
    with ws.engine.begin() as conn:  # the dead runner's lease runs out
        conn.execute(update(g2p_batch_steps).where(g2p_batch_steps.c.batch_id == stuck.owner_id)
                     .values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
    assert [w[0] for w in pipeline.waiting(ws, "fa_resolution")] == [stuck.owner_id]
    ran = run_step(ws, "fa_resolution", worker="w2")
    assert (ran.claimed, ran.processed) == (1, 1)
    with ws.engine.connect() as conn:
        actions = [h["action"] for h in audit.history(conn, "g2p_batch_step", f"{stuck.owner_id}:fa_resolution")]
    assert actions == ["claim", "recover", "claim", "processed"]
    state = batches.batch_control(ws, stuck.owner_id).steps[0]
    assert (state.status, state.attempts) == ("PROCESSED", 2)
    # The dead runner wakes up: its lease is gone, it changes nothing.
    with pytest.raises(claims.LeaseLost), ws.engine.begin() as conn:
        claims.finish(conn, stuck, error=None, actor="worker:dead")


class CrashAfterPaying:
    """The bank pays, then the runner dies before recording anything."""

    def __init__(self, bank):
        self.bank, self.calls = bank, 0

    def __getattr__(self, name):
        return getattr(self.bank, name)

    def pay(self, block_reference, payments, key):
        self.bank.pay(block_reference, payments, key)
        self.calls += 1
        raise RuntimeError("killed after the bank call")


def test_a_disburse_killed_after_the_bank_call_pays_nothing_twice(ws):
    sim, env, _made = world(ws, batches_of=(12,))
    for step in ("fa_resolution", "funds_check", "funds_block"):
        run_step(ws, step, worker="w1")
    real = Connectors.from_settings(ws.settings)
    crashing = Connectors(real.mapper, CrashAfterPaying(real.bank))
    ran = run_step(ws, "disburse", worker="w1", connectors=crashing)
    assert (ran.claimed, ran.errors, crashing.bank.calls) == (1, 1, 1)
    paid_once = {r for r, p in sim.state()["g2p_payments"].items() if p["status"] == "paid"}
    assert paid_once and _entries(ws) == {}
    assert envelopes.envelope_status(ws, env.id).envelope.shipped_count == 0
    ran = run_step(ws, "disburse", worker="w1", connectors=real)
    real.close()
    assert (ran.claimed, ran.processed) == (1, 1)
    state = sim.state()
    assert {r for r, p in state["g2p_payments"].items() if p["status"] == "paid"} == paid_once
    assert state["g2p_accounts"]["SPONSOR-1"]["balance_minor"] == 100_000_000 - 10_000 * len(paid_once)
    assert sorted(_entries(ws)) == sorted(paid_once)
    shipped = {r.id for r in rows(ws, g2p_disbursements, g2p_disbursements.c.status == "SHIPPED")}
    assert shipped == paid_once
    assert envelopes.envelope_status(ws, env.id).envelope.shipped_count == len(paid_once)
    # A third run (say a stale recovery racing a slow runner) finds nothing to pay.
    with ws.engine.begin() as conn:
        conn.execute(update(g2p_batch_steps).where(g2p_batch_steps.c.step == "disburse")
                     .values(status="PENDING"))
    run_step(ws, "disburse", worker="w1")
    assert sorted(_entries(ws)) == sorted(paid_once)
    assert sim.state()["g2p_accounts"]["SPONSOR-1"]["balance_minor"] == 100_000_000 - 10_000 * len(paid_once)


def test_two_runners_never_claim_the_same_batch(ws):
    if ws.engine.dialect.name != "postgresql":
        pytest.skip("row locks with SKIP LOCKED: PostgreSQL")
    _sim, _env, made = world(ws, batches_of=(3,) * 8)
    done = [0, 0]
    barrier = threading.Barrier(2)

    def runner(n):
        barrier.wait()
        while (ran := run_step(ws, "fa_resolution", worker=f"w{n}", limit=1)).claimed:
            done[n] += ran.processed

    threads = [threading.Thread(target=runner, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(done) == 8
    with ws.engine.connect() as conn:
        for batch in made:
            history = audit.history(conn, "g2p_batch_step", f"{batch.id}:fa_resolution")
            assert [h["action"] for h in history] == ["claim", "processed"]
        attempts = conn.execute(select(func.max(g2p_batch_steps.c.attempts))
                                .where(g2p_batch_steps.c.step == "fa_resolution")).scalar_one()
    assert attempts == 1
    assert len(rows(ws, g2p_financial_addresses)) == 24 - 1  # B0-3 is unlinked


def test_an_envelope_whose_funds_are_blocked_cannot_be_cancelled_and_a_racing_cancel_loses_nothing(ws):
    """Cancel is refused once the bank blocked the funds; a cancel that raced the block (committed while the
    bank was paying) does not leave the step in ERROR: what the bank paid is recorded as SHIPPED."""
    sim, env, _ = world(ws, batches_of=(6,))
    for step in ("fa_resolution", "funds_check", "funds_block"):
        assert run_step(ws, step, worker="w1").processed == 1
    assert code_of(envelopes.cancel_envelope, ws, env.id, actor="partner:mis1") == (
        codes.DISBURSEMENT_ENVELOPE_FUNDS_BLOCKED)

    conns = Connectors.from_settings(ws.settings)
    pay = conns.bank.pay

    def pay_then_cancel(*args, **kwargs):
        outcomes = pay(*args, **kwargs)
        with ws.engine.begin() as conn:  # the race: the cancel commits while the bank pays
            conn.execute(update(g2p_envelopes).values(cancelled=True))
        return outcomes

    conns.bank.pay = pay_then_cancel
    ran = run_step(ws, "disburse", worker="w1", connectors=conns)
    conns.close()
    assert (ran.processed, ran.errors) == (1, 0)
    paid = {r for r, p in sim.state()["g2p_payments"].items() if p["status"] == "paid"}
    assert paid and {r.id for r in rows(ws, g2p_disbursements, g2p_disbursements.c.status == "SHIPPED")} == paid
    assert envelopes.envelope_status(ws, env.id).envelope.shipped_count == len(paid)



def test_a_cancel_is_refused_while_the_funds_block_step_holds_the_envelope(ws):
    """While the funds_block step holds an envelope (the bank may be blocking its funds), a cancel is refused;
    once the block is in, the usual refusal."""
    sim, env, _ = world(ws, batches_of=(6,))
    for step in ("fa_resolution", "funds_check"):
        assert run_step(ws, step, worker="w1").processed == 1
    conns = Connectors.from_settings(ws.settings)
    block, refused = conns.bank.block_funds, []

    def block_with_a_cancel_in_flight(*args, **kwargs):
        refused.append(code_of(envelopes.cancel_envelope, ws, env.id, actor="partner:mis1"))
        return block(*args, **kwargs)

    conns.bank.block_funds = block_with_a_cancel_in_flight
    ran = run_step(ws, "funds_block", worker="w1", connectors=conns)
    conns.close()
    assert (ran.processed, refused) == (1, [codes.DISBURSEMENT_ENVELOPE_FUNDS_BLOCKING])
    found = envelopes.envelope_status(ws, env.id).envelope
    assert (found.funds_blocked, found.cancelled) == (funds.FUNDS_BLOCK_SUCCESS, False)
    assert len(sim.state()["g2p_blocks"]) == 1
    assert code_of(envelopes.cancel_envelope, ws, env.id, actor="partner:mis1") == (
        codes.DISBURSEMENT_ENVELOPE_FUNDS_BLOCKED)


def test_a_cancel_committed_after_the_claim_stops_the_funds_block_before_the_bank(ws, monkeypatch):
    sim, env, _ = world(ws, batches_of=(6,))
    for step in ("fa_resolution", "funds_check"):
        assert run_step(ws, step, worker="w1").processed == 1
    claim = claims.claim

    def claim_then_cancel(*args, **kwargs):  # the cancel commits after the claim read the envelope
        held = claim(*args, **kwargs)
        with ws.engine.begin() as conn:
            conn.execute(update(g2p_envelopes).where(g2p_envelopes.c.id == env.id)
                         .values(cancelled=True, cancelled_at=datetime.now(UTC)))
        return held

    monkeypatch.setattr(claims, "claim", claim_then_cancel)
    ran = run_step(ws, "funds_block", worker="w1")
    assert (ran.claimed, ran.processed, ran.errors) == (1, 0, 1)
    assert not sim.state().get("g2p_blocks")  # the bank was never asked
    with ws.engine.connect() as conn:
        step = conn.execute(select(g2p_envelope_steps.c.status, g2p_envelope_steps.c.latest_error).where(
            g2p_envelope_steps.c.envelope_id == env.id, g2p_envelope_steps.c.step == "funds_block")).one()
    assert step.status == "ERROR" and f"{env.id} was cancelled" in step.latest_error
    assert envelopes.envelope_status(ws, env.id).envelope.funds_blocked != funds.FUNDS_BLOCK_SUCCESS
    assert not rows(ws, ledger_holds, ledger_holds.c.hold_id == funds.hold_id(env.id))
