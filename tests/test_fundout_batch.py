"""Fund-out batches on SQLite and PostgreSQL against the bank simulator over real HTTP: amounts, exactly
once per (business, currency, slot) when run again or concurrently, the bank failing, timing out and
answering late, missed slots, manual cash-out, and balances equal to the minimum after the batch."""

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from ops_pipeline.db.schema import fundout_batches, fundout_payouts, ledger_holds, outbox
from ops_pipeline.errors import Conflict, InsufficientFunds, InvalidInput
from ops_pipeline.fundout import batch, cashout, config, payouts
from ops_pipeline.fundout.bank import Bank
from ops_pipeline.ledger import balances
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.observability.metrics import FUNDOUT_BATCH_SECONDS, FUNDOUT_MISSED_SLOTS, FUNDOUT_PAYOUTS
from ops_pipeline.partners.clients import HttpOptions
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings

SLOT = datetime(2026, 11, 21, 22, tzinfo=UTC)  # a Saturday, 22:00 UTC
FAST = HttpOptions(timeout=0.5, retries=1, backoff=0.01)


@pytest.fixture
def ws(tmp_path, db_url, sim_url):
    workspace = Workspace(make_settings(tmp_path / "home", db_url, OPS_BANK_URL=sim_url,
                                        OPS_ALERT_EMAIL="ops@example.test"))
    workspace.init()
    yield workspace
    workspace.close()


@pytest.fixture
def bank(ws):
    client = Bank(ws.settings, FAST)
    yield client
    client.close()


def fund(ws, *balances_):
    """ADJUSTMENT entries: (business, currency, minor) each."""
    post_entries(ws, [Entry("ADJUSTMENT", f"fund-{b}-{c}-{m}", b, c, m, "adjustment") for b, c, m in balances_],
                 "test-funding")


def configure(ws, business, **body):
    config.create_config(ws, business, {"freqType": "H", "enabled": True, **body}, "ops:test")


def available(ws, business):
    return {b.currency: b.available_minor for b in balances.get_balances(ws, business)}


def bank_payouts(sim):
    return sorted((p["business_id"], p["currency"], p["amount_minor"]) for p in sim.state()["payouts"].values())


def rows(ws, table, *where):
    with ws.engine.connect() as conn:
        return conn.execute(select(table).where(*where)).all()


def test_a_slot_pays_all_but_the_minimum_and_leaves_exactly_the_minimum(ws, sim, bank):
    fund(ws, ("B1", "EUR", 10_000), ("B1", "USD", 5_000), ("B2", "JPY", 1_000), ("B3", "EUR", 500),
         ("B4", "EUR", 7_000), ("B5", "EUR", 7_000))
    configure(ws, "B1", minimumBalance="10.005", notifyEmail="b1@example.test")
    configure(ws, "B2")
    configure(ws, "B3", minimumBalance=10)
    config.create_config(ws, "B4", {"freqType": "H", "enabled": False}, "ops:test")
    configure(ws, "B5", freqType="D", hour=9)  # not due at 22:00
    [report] = batch.run_due(ws, "test", now=SLOT + timedelta(minutes=3), bank=bank)
    assert report.status == "done"
    s = report.summary
    assert (s.due, s.paid, s.skipped, s.failed, s.pending) == (3, 3, 1, 0, 0)
    assert s.paid_amounts == {"EUR": Decimal("89.99"), "JPY": Decimal(1000), "USD": Decimal("39.99")}
    assert available(ws, "B1") == {"EUR": 1001, "USD": 1001}  # 10.005 rounded up in cents
    assert available(ws, "B2") == {"JPY": 0}
    assert available(ws, "B3") == {"EUR": 500} and available(ws, "B4") == {"EUR": 7_000}
    assert bank_payouts(sim) == [("B1", "EUR", 8999), ("B1", "USD", 3999), ("B2", "JPY", 1000)]
    assert {r.status for r in rows(ws, fundout_payouts)} == {"posted"}
    assert {r.status for r in rows(ws, ledger_holds)} == {"captured"}
    assert balances.rebuild(ws).differences == []
    events = sorted((r.event, r.channel, r.recipient) for r in rows(ws, outbox))
    assert events == sorted([("fundout.paid", "webhook", None)] * 3 + [("fundout.paid", "email", "b1@example.test")] * 2)


def test_a_slot_run_again_or_concurrently_pays_once(ws, sim, bank):
    fund(ws, *[(f"B{i}", "EUR", 10_000 + i) for i in range(20)])
    for i in range(20):
        configure(ws, f"B{i}", minimumBalance=1)
    batch.run_slot(ws, SLOT, "first", bank=bank)
    runners = [threading.Thread(target=batch.run_slot, args=(ws, SLOT, f"r{i}", bank)) for i in range(3)]
    runners += [threading.Thread(target=batch.run_due, args=(ws, "due"), kwargs={"now": SLOT, "bank": bank})]
    for t in runners:
        t.start()
    for t in runners:
        t.join()
    assert len(bank_payouts(sim)) == 20
    assert all(n == 1 for n in sim.calls().values())
    assert all(available(ws, f"B{i}") == {"EUR": 100} for i in range(20))
    [row] = rows(ws, fundout_batches)
    assert (row.summary["paid"], row.summary["pending"]) == (20, 0)


def test_two_schedulers_at_once_from_cold_pay_once(ws, sim, bank):
    fund(ws, *[(f"B{i}", "EUR", 5_000) for i in range(10)])
    for i in range(10):
        configure(ws, f"B{i}")
    runners = [threading.Thread(target=batch.run_due, args=(ws, f"s{i}"), kwargs={"now": SLOT, "bank": bank})
               for i in range(2)]
    for t in runners:
        t.start()
    for t in runners:
        t.join()
    assert len(bank_payouts(sim)) == 10 and len(rows(ws, fundout_payouts)) == 10


def test_a_refused_payout_releases_the_hold_changes_no_balance_and_alerts(ws, sim, bank):
    fund(ws, ("B1", "EUR", 10_000), ("B2", "EUR", 10_000))
    configure(ws, "B1", notifyEmail="b1@example.test")
    configure(ws, "B2")
    sim.block("B1")
    [report] = batch.run_due(ws, "test", now=SLOT, bank=bank)
    s = report.summary
    assert (s.paid, s.failed, s.alerted) == (1, 1, True)
    failed = [r for r in rows(ws, fundout_payouts) if r.status == "failed"]
    assert len(failed) == 1 and "account of 'B1' is blocked" in failed[0].error
    loser = failed[0].business_id
    assert available(ws, loser) == {"EUR": 10_000}
    assert rows(ws, ledger_holds, ledger_holds.c.hold_id == failed[0].id)[0].status == "released"
    alerts = rows(ws, outbox, outbox.c.event == "ops.alert")
    assert {(a.channel, a.recipient) for a in alerts} == {("webhook", None), ("email", "ops@example.test")}
    assert alerts[0].payload["failed"] == 1 and alerts[0].payload["rate"] == "0.5000"
    assert len(rows(ws, outbox, outbox.c.event == "fundout.failed", outbox.c.channel == "webhook")) == 1
    # Once unblocked, the next slot pays it (hourly); the failure is not retried inside the failed slot.
    sim.block("B1", blocked=False)
    batch.run_due(ws, "test", now=SLOT + timedelta(hours=1), bank=bank)
    assert available(ws, loser) == {"EUR": 0}


def test_a_late_answer_is_resolved_by_asking_the_bank_not_by_paying_again(ws, sim, bank):
    fund(ws, ("B1", "EUR", 10_000))
    configure(ws, "B1")
    sim.inject("/payouts/batch", delay=1.5, times=1)  # the bank pays, then answers after our timeout
    [report] = batch.run_due(ws, "test", now=SLOT, bank=bank)
    assert report.summary.paid == 1
    assert sum(n for key, n in sim.calls().items() if key.startswith("payouts:")) == 1  # sent once
    assert bank_payouts(sim) == [("B1", "EUR", 10_000)]
    assert available(ws, "B1") == {"EUR": 0}


def test_5xx_then_absent_at_the_bank_is_sent_again_under_its_own_reference_and_paid_once(ws, sim, bank):
    fund(ws, ("B1", "EUR", 10_000))
    configure(ws, "B1")
    sim.inject("/payouts/batch", status=503, times=2)  # the request and its one retry
    [report] = batch.run_due(ws, "test", now=SLOT, bank=bank)
    assert (report.summary.paid, report.summary.failed) == (1, 0)
    [payout] = rows(ws, fundout_payouts)
    assert (payout.status, payout.attempts) == ("posted", 1)
    assert bank_payouts(sim) == [("B1", "EUR", 10_000)] and available(ws, "B1") == {"EUR": 0}


def test_a_bank_that_never_takes_the_payout_keeps_it_held_not_failed(ws, sim, bank):
    fund(ws, ("B1", "EUR", 10_000))
    configure(ws, "B1")
    sim.inject("/payouts/batch", status=503, times=4)  # both sends, each with its retry
    [report] = batch.run_due(ws, "test", now=SLOT, bank=bank)
    assert (report.status, report.summary.pending, report.summary.failed) == ("pending", 1, 0)
    [payout] = rows(ws, fundout_payouts)
    assert payout.status == "unknown" and "no payout with this reference" in payout.error
    assert bank_payouts(sim) == [] and available(ws, "B1") == {"EUR": 0}  # still held: a late request is safe
    report = batch.run_slot(ws, SLOT, "again", bank=bank)  # the bank is back
    assert (report.status, report.summary.paid) == ("done", 1)
    assert bank_payouts(sim) == [("B1", "EUR", 10_000)] and available(ws, "B1") == {"EUR": 0}


def test_an_unknown_outcome_stays_held_until_the_bank_answers(ws, sim, bank):
    fund(ws, ("B1", "EUR", 10_000))
    configure(ws, "B1")
    sim.inject("/payouts/lookup", status=500, times=2)  # status queries fail ...
    sim.inject("/payouts/batch", delay=1.5, times=1)  # ... after a payment answered too late
    [report] = batch.run_due(ws, "test", now=SLOT, bank=bank)
    assert (report.status, report.summary.pending) == ("pending", 1)
    [payout] = rows(ws, fundout_payouts)
    assert payout.status == "unknown"
    assert available(ws, "B1") == {"EUR": 0}  # still held: never paid out twice from the same money
    sim.clear_faults()
    report = batch.run_slot(ws, SLOT, "again", bank=bank)
    assert (report.status, report.summary.paid) == ("done", 1)
    assert bank_payouts(sim) == [("B1", "EUR", 10_000)]
    assert balances.get_balances(ws, "B1")[0].settled_minor == 0


def test_missed_slots_run_once_within_24h_and_older_ones_are_reported(ws, sim, bank):
    fund(ws, ("B1", "EUR", 10_000))
    configure(ws, "B1", freqType="D", hour=23)
    batch.run_due(ws, "test", now=SLOT, bank=bank)  # 22:00: not due
    later = batch.run_due(ws, "test", now=SLOT + timedelta(hours=3), bank=bank)  # 23:00 and 00:00 missed
    assert [r.slot.strftime("%H:%M") for r in later] == ["23:00", "00:00", "01:00"]
    assert [r.summary.paid for r in later] == [1, 0, 0]
    fund(ws, ("B1", "EUR", 500))
    much_later = batch.run_due(ws, "test", now=SLOT + timedelta(hours=40), bank=bank)
    assert len(much_later) == 25  # the 24 slots of the last 24 h, then the current one
    assert [r.summary.paid for r in much_later].count(1) == 1  # 23:00 of the next day, once
    missed = rows(ws, fundout_batches, fundout_batches.c.status == "missed")
    assert len(missed) == 12  # 02:00 .. 13:00 of the next day: more than 24 h old, not paid
    [alert] = rows(ws, outbox, outbox.c.event == "ops.alert", outbox.c.channel == "email")
    assert alert.payload["slots"] == 12 and alert.recipient == "ops@example.test"
    assert bank_payouts(sim) == [("B1", "EUR", 500), ("B1", "EUR", 10_000)]


def test_manual_cashout_ignores_the_minimum_and_is_idempotent(ws, sim, bank):
    fund(ws, ("B1", "EUR", 10_000))
    configure(ws, "B1", minimumBalance=50)
    first = cashout.cashout(ws, "B1", "60.00", None, "merchant:B1", idempotency_key="k1", bank=bank)
    assert (first.status, first.kind, first.amount_minor) == ("posted", "manual", 6_000)
    assert available(ws, "B1") == {"EUR": 4_000}  # below the 50.00 minimum: the merchant asked
    again = cashout.cashout(ws, "B1", "60.00", "EUR", "merchant:B1", idempotency_key="k1", bank=bank)
    assert again.id == first.id and len(bank_payouts(sim)) == 1
    with pytest.raises(Conflict, match="Idempotency-Key"):
        cashout.cashout(ws, "B1", "1.00", "EUR", "merchant:B1", idempotency_key="k1", bank=bank)
    with pytest.raises(InsufficientFunds, match=r"exceeds the available 40\.00 EUR"):
        cashout.cashout(ws, "B1", "40.01", "EUR", "merchant:B1", bank=bank)
    sim.inject("/payouts", status=422, times=1)
    refused = cashout.cashout(ws, "B1", "10.00", "EUR", "merchant:B1", bank=bank)
    assert refused.status == "failed" and available(ws, "B1") == {"EUR": 4_000}


def test_a_slot_whose_run_stopped_before_planning_runs_again_with_the_next_batch(ws, sim, bank):
    fund(ws, ("B1", "EUR", 10_000))
    configure(ws, "B1", freqType="D", hour=22)
    batch.trigger(ws, "scheduler", now=SLOT)  # queued, then the process died before the run started
    reports = batch.run_due(ws, "test", now=SLOT + timedelta(hours=1), bank=bank)
    assert [(r.slot.strftime("%H:%M"), r.status, r.summary.paid) for r in reports] == [
        ("22:00", "done", 1), ("23:00", "done", 0)]
    assert bank_payouts(sim) == [("B1", "EUR", 10_000)]


def test_batch_ids_beyond_64_bits_are_refused_naming_the_field(ws):
    with pytest.raises(InvalidInput, match=r"^batchId: 18446744073709551616 is not a batch id"):
        batch.get_batch(ws, 2**64)
    with pytest.raises(InvalidInput, match=r"^cursor: "):
        batch.list_batches(ws, after=2**64)
    with pytest.raises(InvalidInput, match=r"^status: "):
        batch.list_batches(ws, status="lost")


def payout_counters():
    """This process's fund-out payout counters (multiprocess mode keeps one file per process)."""
    return {s: FUNDOUT_PAYOUTS.labels(s)._value.get() for s in ("paid", "failed", "pending")}


def batch_runs():
    return next(s.value for s in FUNDOUT_BATCH_SECONDS.collect()[0].samples if s.name.endswith("_count"))


def db_payouts(ws, *where):
    found = Counter(r.status for r in rows(ws, fundout_payouts, *where))
    return {"paid": found["posted"], "failed": found["failed"], "pending": sum(found[s] for s in payouts.OPEN)}


def test_metrics_count_each_payout_once_as_the_database_ends_it(ws, sim, bank):
    fund(ws, ("B1", "EUR", 10_000), ("B2", "EUR", 10_000), ("B3", "USD", 500))
    for b in ("B1", "B2", "B3"):
        configure(ws, b)
    sim.block("B1")
    start, runs = payout_counters(), batch_runs()

    def counted():
        now = payout_counters()
        return {s: now[s] - start[s] for s in now}

    batch.run_due(ws, "test", now=SLOT, bank=bank)
    assert counted() == db_payouts(ws, fundout_payouts.c.slot == SLOT) == {"paid": 2, "failed": 1, "pending": 0}
    assert batch_runs() - runs == 1
    # The next slot finds the bank down: both payouts stay pending (held), counted once.
    sim.block("B1", blocked=False)
    fund(ws, ("B2", "EUR", 700))
    sim.inject("/payouts/batch", status=503, times=4)
    second = SLOT + timedelta(hours=1)
    batch.run_due(ws, "test", now=second, bank=bank)
    assert db_payouts(ws, fundout_payouts.c.slot == second) == {"paid": 0, "failed": 0, "pending": 2}
    assert counted() == {"paid": 2, "failed": 1, "pending": 2}
    sim.clear_faults()
    batch.run_slot(ws, second, "again", bank=bank)  # paid now; a pending payout is not counted twice
    batch.run_slot(ws, second, "again", bank=bank)  # nothing left: nothing counted
    assert db_payouts(ws, fundout_payouts.c.slot == second) == {"paid": 2, "failed": 0, "pending": 0}
    assert counted() == {"paid": 4, "failed": 1, "pending": 2}
    assert batch_runs() - runs == 4
    # Missed slots are counted when recorded, once.
    missed = FUNDOUT_MISSED_SLOTS._value.get()
    for _ in range(2):
        batch.run_due(ws, "test", now=SLOT + timedelta(hours=40), bank=bank)
    recorded = len(rows(ws, fundout_batches, fundout_batches.c.status == "missed"))
    assert FUNDOUT_MISSED_SLOTS._value.get() - missed == recorded == 14
    assert counted() == {"paid": 4, "failed": 1, "pending": 2}  # every balance was at its minimum since
