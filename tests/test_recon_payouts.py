"""Payouts against the bank statement, on SQLite and PostgreSQL: a fund-out slot and a cash-out paid by the
bank simulator over real HTTP, its MT940 loaded back, plus a hand-written statement with a duplicate debit,
an unknown reference, an amount mismatch, a debit outside the window and reversals."""

import os
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from ops_pipeline.audit import history
from ops_pipeline.db.schema import fundout_payouts
from ops_pipeline.fundout import batch, cashout, config
from ops_pipeline.fundout.bank import Bank
from ops_pipeline.ledger import balances
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.recon import payouts as recon_payouts
from ops_pipeline.recon import store
from ops_pipeline.statements.intake import load_statement
from tests.servers import CLI

SLOT = datetime(2026, 11, 21, 22, tzinfo=UTC)


@pytest.fixture
def ws(bank_ws):
    return bank_ws


@pytest.fixture
def bank(ws):
    client = Bank(ws.settings)
    yield client
    client.close()


def available(ws, business, currency):
    return {b.currency: b.available_minor for b in balances.get_balances(ws, business)}[currency]


def line(day, mark, amount, reference, bank_ref="BANKREF"):
    return [f":61:{day:%y%m%d}{day:%m%d}{mark}{amount}NTRFNONREF//{bank_ref}", f":86:/EREF/{reference}/REMI/test"]


def statement(ref, currency, day, lines):
    return [f":20:{ref}", f":25:SIMBANK-PAYOUTS-{currency}", ":28C:00009/001",
            f":60F:C{day:%y%m%d}{currency}0,", *lines]


def test_payouts_match_the_statement_one_to_one_and_every_anomaly_is_a_break(ws, sim, bank):
    post_entries(ws, [Entry("ADJUSTMENT", f"fund-{b}", b, c, m, "adjustment")
                      for b, c, m in (("B1", "EUR", 10_000), ("B2", "EUR", 5_000), ("B3", "JPY", 3_000),
                                      ("B4", "EUR", 5_000))], "test-funding")
    for business in ("B1", "B2", "B3"):
        config.create_config(ws, business, {"freqType": "H", "enabled": True}, "ops:test")
    assert batch.run_slot(ws, SLOT, "test", bank=bank).summary.paid == 3
    day = datetime.now(UTC).date()  # payouts are dated when posted; OPS_TIMEZONE is UTC here
    exported = sim.statement("mt940", day)  # the slot's three payouts; the cash-out comes after
    assert load_statement(ws, exported.encode(), "sim.sta", "tester").entries == 3
    cash = cashout.cashout(ws, "B4", "20.00", "EUR", "merchant:B4", bank=bank)
    with ws.engine.connect() as conn:
        ids = {r.business_id: r.id for r in conn.execute(select(fundout_payouts))}
    assert (cash.id, cash.status, cash.kind) == (ids["B4"], "posted", "manual")

    later, late = day + timedelta(days=1), day + timedelta(days=3)
    hand = statement("HAND-EUR", "EUR", later, [
        *line(later, "D", "100,00", ids["B1"]),  # the bank's duplicate of B1's debit
        *line(later, "D", "5,00", "no-such-payout"),
        *line(later, "D", "19,99", ids["B4"].upper()),  # the cash-out, one cent short; reference upper-cased
        *line(later, "RD", "50,00", ids["B2"]),  # B2's payout came back
        *line(later, "RD", "50,00", ids["B2"]),  # ... and again: a second reversal is a break
        *line(later, "RD", "7,00", "no-such-payout"),
    ]) + statement("HAND-JPY", "JPY", late, line(late, "D", "3000,", ids["B3"]))  # outside the window
    assert load_statement(ws, ("\n".join(hand) + "\n").encode(), "hand.sta", "tester").entries == 7

    internal, external = recon_payouts.records(ws, day)
    assert sorted(internal.select("business_id", "kind", "amount", "currency").rows()) == [
        ("B1", "scheduled", 10_000, "EUR"), ("B2", "scheduled", 5_000, "EUR"), ("B3", "scheduled", 3_000, "JPY"),
        ("B4", "manual", 2_000, "EUR")]
    assert sorted(external.select("reference", "amount").rows()) == sorted([
        (ids["B1"], 10_000), (ids["B1"], 10_000), (ids["B2"], 5_000), (ids["B3"], 3_000), ("no-such-payout", 500),
        (ids["B4"].upper(), 1_999)])  # only debits, only D..D+2
    assert recon_payouts.records(ws, day + timedelta(days=1))[0].is_empty()

    # Reversals first: B2 returned and credited once; the second RD and the unknown one are breaks.
    assert available(ws, "B2", "EUR") == 0
    first = recon_payouts.apply_reversals(ws, "ops:alice")
    assert [(r.payout_id, r.amount_minor, r.outcome) for r in first] == [
        (ids["B2"], 5_000, "returned"), (ids["B2"], 5_000, "break"), (None, 700, "break")]
    assert "a second reversal" in first[1].reason and first[2].reason == "reference 'no-such-payout' is no payout of ours"
    again = recon_payouts.apply_reversals(ws, "ops:bob")
    assert [r.outcome for r in again] == ["already returned", "break", "break"]
    env = {**os.environ, "OPS_HOME": str(ws.settings.home), "OPS_DATABASE_URL": ws.settings.database_url}
    out = subprocess.run([CLI, "recon", "reversals", "--format", "csv"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.count("already returned") == 1, out.stderr
    assert "50.00,EUR,already returned" in out.stdout
    assert available(ws, "B2", "EUR") == 5_000  # credited exactly once
    assert balances.rebuild(ws).differences == []
    with ws.engine.connect() as conn:
        status = conn.execute(select(fundout_payouts.c.status).where(fundout_payouts.c.id == ids["B2"])).scalar()
        returned = [(a["actor"], a["action"]) for a in history(conn, "payout", ids["B2"])]
        credited = [(a["actor"], a["after"]["amount_minor"]) for a in history(conn, "ledger_entry",
                                                                                f"reversal-{ids['B2']}")]
    assert (status, returned, credited) == ("returned", [("ops:alice", "returned")], [("ops:alice", 5_000)])

    dry = recon_payouts.run(ws, day, actor="ops:alice", dry_run=True)
    assert (dry.run_id, store.latest_results(ws, "payouts", day)) == (None, [])
    summary = recon_payouts.run(ws, day, actor="ops:alice")
    assert summary.rows == dry.rows
    assert summary.counts == {"matched": 3, "matched_with_difference": 1, "unmatched_internal": 0,
                              "unmatched_external": 2, "manual": 0}
    exact = {r.internal_ids: (r.rule_id, r.internal_amount_minor, r.external_amount_minor) for r in summary.rows
             if r.status == "matched"}
    assert exact == {(ids["B1"],): ("exact", 10_000, 10_000), (ids["B2"],): ("exact", 5_000, 5_000),
                     (ids["B3"],): ("exact", 3_000, 3_000)}  # the returned payout was still paid that day
    [mismatch] = [r for r in summary.rows if r.status == "matched_with_difference"]
    assert (mismatch.internal_ids, mismatch.rule_id, mismatch.amount_difference_minor) == (
        (ids["B4"],), "amount-differs", 1)
    assert mismatch.reason == "rule amount-differs: internal - external = 1 minor units"
    breaks = sorted((r.external_amount_minor, r.reason) for r in summary.unmatched_external)
    assert breaks == [(500, "no match under rules: exact, amount-differs"),
                      (10_000, "no match under rules: exact, amount-differs")]  # the duplicate: B1 is taken
    assert len(store.latest_results(ws, "payouts", day)) == 6
