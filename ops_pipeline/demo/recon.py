"""The demo's reconciliation chapter: settlement (CO vs RO) of every day of the world, then the payouts of
today against the bank's statement of today, with a payout the bank sent back and a charge nobody booked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, datetime

from ops_pipeline.money import to_major
from ops_pipeline.partners.clients import sandbox
from ops_pipeline.recon import payouts, settlement
from ops_pipeline.recon.breaks import open_breaks
from ops_pipeline.statements.intake import load_statement
from ops_pipeline.workspace import Workspace

ACTOR = "demo"


def run_recon(ws: Workspace, days: list[date], echo: Callable[[str], None]) -> date:
    """Reconcile `days` and today's payouts; prints what ops would look at. Today's business date."""
    counts: Counter[str] = Counter()
    for day in days:
        counts.update(settlement.run(ws, day, actor=ACTOR).counts)
    echo(f"Reconciliation: settlement (CO vs RO within the PSP's window) of {len(days)} dates: "
         f"{counts['matched']:,} matched, {counts['matched_with_difference']} matched with a difference, "
         f"{counts['unmatched_internal']:,} CO without RO, {counts['unmatched_external']} RO without CO")
    today = datetime.now(ws.settings.tz).date()
    echo("  unreconciled COs by age (settlement_aging view):")
    for bucket, currency, n, minor in settlement.aging(ws, today):
        echo(f"    {bucket:>5} days  {currency}  {n:>5}  {to_major(minor, currency)}")

    bank = sandbox(ws.settings)
    state = bank.state()
    paid = sorted(r for r, p in state["payouts"].items() if p.get("booked_on") == today.isoformat())
    if not paid:
        echo(f"  the bank paid nothing on {today}: no statement to reconcile")
        return today
    if not any(p["status"] == "returned" for p in state["payouts"].values()):
        bank.reverse(paid[0], reason="AC04 account closed")
        bank.charge(f"BANK-FEE-{today:%Y%m%d}", "2.50", "EUR", "monthly account fee")
    loaded = load_statement(ws, bank.statement("mt940", day=today).encode(), f"simbank-{today}.sta", ACTOR)
    echo(f"  bank statement of {today} (MT940): {loaded.entries} entries loaded"
         + (" (already loaded)" if loaded.already_loaded else ""))
    outcomes = Counter(r.outcome for r in payouts.apply_reversals(ws, ACTOR))
    echo(f"  reversals: {outcomes['returned']} payout returned and credited back now, "
         f"{outcomes['already returned']} returned before, {outcomes['break']} break(s)")
    summary = payouts.run(ws, today, actor=ACTOR)
    c = summary.counts
    echo(f"  payouts of {today} vs the statement: {c['matched']} matched, {c['matched_with_difference']} "
         f"with a difference, {c['unmatched_internal']} not on the statement, "
         f"{c['unmatched_external']} statement line(s) no payout explains")
    found = Counter(b["status"] for b in open_breaks(ws))
    echo(f"  open breaks: {sum(found.values())} ({', '.join(f'{n} {s}' for s, n in sorted(found.items()))}); "
         "ops resolve them with `ops-pipeline recon resolve`")
    return today
