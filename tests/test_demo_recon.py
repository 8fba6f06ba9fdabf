"""The demo's reconciliation chapter on a small world: settlement of every day finds exactly the late,
missing and mismatched ROs the world made; today's payouts meet the bank's statement with its reversal
and its charge; running the chapter again changes nothing."""

from datetime import UTC, datetime, timedelta

from ops_pipeline import analytics
from ops_pipeline.demo.fundout import run_fundout
from ops_pipeline.demo.recon import run_recon
from ops_pipeline.demo.world import MISMATCH_EVERY, build_world
from ops_pipeline.ledger import balances, ingest, merchants
from ops_pipeline.ledger.split import primary_sql
from ops_pipeline.recon import store


def test_the_recon_chapter_finds_what_the_world_hid(sqlite_ws, tmp_path):
    ws = sqlite_ws
    start = (datetime.now(UTC) - timedelta(days=31)).date().replace(day=1)
    world = build_world(tmp_path / "world", operations=1_200, merchants=20, seed=7, start=start)
    for path in (world.merchants_file, world.late_merchants_file):
        merchants.load(ws, path, actor="test")
    for _, co, ro in world.days:
        ingest.ingest_file(ws, co, "confirmed")
        ingest.ingest_file(ws, ro, "reconciled")
    ingest.reprocess(ws, actor="test")
    run_fundout(ws, lambda _: None)
    lines: list[str] = []
    days = [day for day, _, _ in world.days]
    today = run_recon(ws, days, lines.append)

    rows = [r for day in days for r in store.latest_results(ws, "settlement", day)]
    con = analytics.connect(ws)
    cos, ros, nudged = con.execute(f"""
        SELECT count(*) FILTER (source = 'CO'), count(*) FILTER (source = 'RO'),
               count(*) FILTER (source = 'CO' AND CAST(substr(falcon_operation_id, 4) AS INTEGER)
                                % {MISMATCH_EVERY} = 0 AND falcon_operation_id IN (
                   SELECT falcon_operation_id FROM balance_operations WHERE source = 'RO'))
        FROM balance_operations WHERE {primary_sql()} AND source IN ('CO', 'RO')""").fetchone()
    con.close()
    by = {s: [r for r in rows if r.status == s] for s in ("matched", "matched_with_difference",
                                                           "unmatched_internal", "unmatched_external")}
    # every CO and every RO of the month is in exactly one row
    assert sum(len(r.internal_ids) for r in rows) == cos and sum(len(r.external_ids) for r in rows) == ros
    assert len(by["matched_with_difference"]) == nudged > 0  # exactly the ROs one minor unit off
    assert all(abs(r.amount_difference_minor) == 1 for r in by["matched_with_difference"])
    assert by["unmatched_external"] and by["unmatched_internal"]  # late ROs, and their COs
    assert lines[0].startswith(f"Reconciliation: settlement (CO vs RO within the PSP's window) of {len(days)} dates")

    payouts = store.latest_results(ws, "payouts", today)
    [charge] = [r for r in payouts if r.status == "unmatched_external"]
    assert charge.external_amount_minor == 250 and charge.currency == "EUR"
    assert {r.status for r in payouts} == {"matched", "unmatched_external"}
    assert "reversals: 1 payout returned and credited back now" in "\n".join(lines)

    again: list[str] = []
    run_recon(ws, days[-1:], again.append)  # the payouts part again; settlement of one day suffices
    assert "reversals: 0 payout returned and credited back now, 1 returned before, 0 break(s)" in "\n".join(again)
    assert store.latest_results(ws, "payouts", today) == payouts  # the same statement: loaded once
    assert balances.rebuild(ws).differences == []
