"""Settlement (CO vs RO) from operations ingested by the ledger: rules, differences, PSP windows, aging,
idempotent re-runs, dry runs, and the `recon` CLI end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from ops_pipeline import analytics
from ops_pipeline.errors import InvalidInput
from ops_pipeline.ledger import ingest, merchants
from ops_pipeline.recon import breaks, settlement, store
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings
from tests.factories import MERCHANTS, op, write_merchants, write_ops

D = date(2026, 11, 1)
CLI = str(Path(sys.executable).with_name("ops-pipeline"))


def on(day: int, month: int = 11) -> str:
    return f"2026-{month:02d}-{day:02d}T10:00:00Z"


COS = [
    op("c1", "100.00"),  # RO same day: matched
    op("c2", "50.00", merchant="M4"),  # psp2, RO 3 days late: within the default window
    op("c3", "20.00"),  # RO 19.50: matched with a difference of 0.50
    op("c4", "10.00"),  # RO in USD: a break on both sides
    op("c5", "30.00"),  # no RO
    op("c6", "40.00", merchant="M4"),  # psp2, RO 4 days late: beyond 3 days, within psp2=5
    op("c7", "7.00", type="refund"),  # refund: negative on both sides
    op("c8", "1.00", date=on(1, 10)),  # another date
]
ROS = [
    op("c1", "100.00"),
    op("c2", "50.00", merchant="M4", date=on(4)),
    op("c3", "19.50"),
    op("c4", "10.00", currency="USD"),
    op("c6", "40.00", merchant="M4", date=on(5)),
    op("c7", "7.00", type="refund"),
    op("r9", "5.00"),  # no CO
]


@pytest.fixture
def world(ws, tmp_path):
    usd = ("psp1", "lm1", "s1", "USD", "M1", "bs1", "2.9", "0.30")
    merchants.load(ws, write_merchants(tmp_path / "usd.csv", [*MERCHANTS, usd]))
    for kind, rows in (("confirmed", COS), ("reconciled", ROS)):
        r = ingest.ingest_file(ws, write_ops(tmp_path / f"{kind}.csv", rows), kind)
        assert (r.ingested, r.quarantined) == (len(rows), 0)
    return ws


def outcome(rows) -> list[tuple]:
    return sorted((r.status, r.internal_ids, r.external_ids, r.internal_amount_minor, r.external_amount_minor,
                   r.amount_difference_minor, r.currency) for r in rows)


def result_count(ws) -> int:
    return analytics.connect(ws).sql("SELECT count(*) FROM lake_recon_results").fetchall()[0][0]


def test_settlement_statuses_amounts_and_reasons(world):
    summary = settlement.run(world, D, actor="test")
    assert outcome(summary.rows) == [
        ("matched", ("c1",), ("c1",), 10000, 10000, 0, "EUR"),
        ("matched", ("c2",), ("c2",), 5000, 5000, 0, "EUR"),
        ("matched", ("c7",), ("c7",), -700, -700, 0, "EUR"),
        ("matched_with_difference", ("c3",), ("c3",), 2000, 1950, 50, "EUR"),
        ("unmatched_external", (), ("c4",), 0, 1000, -1000, "USD"),
        ("unmatched_external", (), ("r9",), 0, 500, -500, "EUR"),
        ("unmatched_internal", ("c4",), (), 1000, 0, 1000, "EUR"),
        ("unmatched_internal", ("c5",), (), 3000, 0, 3000, "EUR"),
        ("unmatched_internal", ("c6",), (), 4000, 0, 4000, "EUR"),
    ]
    reasons = {(r.status, (*r.internal_ids, *r.external_ids)[0]): r.reason for r in summary.rows}
    assert reasons[("unmatched_internal", "c4")] == "CO and RO of c4 differ: currency CO EUR vs RO USD"
    assert reasons[("unmatched_external", "c4")] == reasons[("unmatched_internal", "c4")]
    assert reasons[("unmatched_internal", "c5")] == "no match under rules: exact, amount_difference"
    assert reasons[("matched_with_difference", "c3")] == (
        "rule amount_difference: internal - external = 50 minor units")
    assert {r.rule_id for r in summary.rows if r.status == "matched"} == {"exact"}
    assert summary.counts["matched"] == 3 and summary.amounts["matched"]["internal_minor"] == 14300
    # the RO of c6, beyond its window, is a break on its own date, not on D
    late = settlement.run(world, date(2026, 11, 5), actor="test", dry_run=True)
    assert outcome(late.rows) == [("unmatched_external", (), ("c6",), 0, 4000, -4000, "EUR")]
    assert outcome(settlement.run(world, date(2026, 11, 4), actor="test", dry_run=True).rows) == []


def test_per_psp_window(world):
    wide = Workspace(make_settings(world.settings.home, world.settings.database_url, OPS_RECON_WINDOWS="psp2=5"))
    try:
        assert wide.settings.recon_windows == {"psp2": 5}
        rows = settlement.run(wide, D, actor="test", dry_run=True).rows
        assert ("matched", ("c6",), ("c6",), 4000, 4000, 0, "EUR") in outcome(rows)
        assert settlement.run(wide, date(2026, 11, 5), actor="test", dry_run=True).rows == ()
    finally:
        wide.close()
    narrow = Workspace(make_settings(world.settings.home, world.settings.database_url,
                                     OPS_RECON_WINDOWS="psp2=2, psp1=0"))
    try:  # c2's RO (3 days after) is now late too
        statuses = {(*r.internal_ids, *r.external_ids)[0] + ":" + r.status
                    for r in settlement.run(narrow, D, actor="test", dry_run=True).rows}
        assert {"c2:unmatched_internal", "c1:matched"} <= statuses
    finally:
        narrow.close()
    with pytest.raises(InvalidInput, match="OPS_RECON_WINDOWS: 'psp1=soon' is not psp=days"):
        make_settings(world.settings.home, OPS_RECON_WINDOWS="psp1=soon")


def test_rerun_is_idempotent_and_dry_run_writes_nothing(world):
    dry = settlement.run(world, D, actor="test", dry_run=True)
    assert (dry.run_id, result_count(world)) == (None, 0)
    first = settlement.run(world, D, actor="test")
    second = settlement.run(world, D, actor="test")
    assert first.rows == second.rows == dry.rows and first.run_id != second.run_id
    assert tuple(store.latest_results(world, "settlement", D)) == second.rows
    assert result_count(world) == 2 * len(first.rows)  # history kept, the latest run in force
    assert len(breaks.open_breaks(world)) == 6


def test_break_ids_are_stable_across_runs_and_name_status_and_records(world):
    settlement.run(world, D, actor="test")
    first = {b["break_id"]: b for b in breaks.open_breaks(world)}
    settlement.run(world, D, actor="test")
    again = {b["break_id"]: b for b in breaks.open_breaks(world)}
    assert set(first) == set(again) and len(first) == 6
    assert all(first[i]["first_seen_at"] == again[i]["first_seen_at"] for i in first)  # the first run's time
    assert {len(i) for i in first} == {16}
    # c4 breaks on both sides (EUR CO, USD RO): same operation id, two breaks, two ids.
    c4 = [i for i, b in first.items() if "c4" in (*b["internal_ids"], *b["external_ids"])]
    assert len(c4) == 2


def test_aging_buckets(world):
    settlement.run(world, D, actor="test")
    settlement.run(world, date(2026, 10, 1), actor="test")
    assert settlement.aging(world, date(2026, 11, 2)) == [("0-1", "EUR", 3, 8000), (">30", "EUR", 1, 100)]
    assert settlement.aging(world, date(2026, 11, 6)) == [("4-7", "EUR", 3, 8000), (">30", "EUR", 1, 100)]
    assert settlement.aging(world, date(2026, 11, 3)) == [("2-3", "EUR", 3, 8000), (">30", "EUR", 1, 100)]
    assert settlement.aging(world, date(2026, 11, 20))[0] == ("8-30", "EUR", 3, 8000)
    con = analytics.connect(world)  # the view, as analysts see it, per CO with its merchant
    found = con.sql("SELECT falcon_operation_id, merchant_id, psp_id, amount_minor FROM settlement_aging "
                    "ORDER BY 1").fetchall()
    assert found == [("c4", "M1", "psp1", 1000), ("c5", "M1", "psp1", 3000), ("c6", "M4", "psp2", 4000),
                     ("c8", "M1", "psp1", 100)]


def test_resolve_errors(world):
    settlement.run(world, D, actor="test")
    with pytest.raises(InvalidInput, match="action: 'ignore' is not one of match, unmatch, write-off"):
        breaks.resolve(world, "x", "ignore", "n", "asha")
    with pytest.raises(InvalidInput, match="status: 'open' is not one of"):
        breaks.open_breaks(world, status="open")


def test_match_two_breaks_by_hand(world):
    settlement.run(world, D, actor="test")
    found = {(b["status"], (*b["internal_ids"], *b["external_ids"])[0]): b["break_id"]
             for b in breaks.open_breaks(world)}
    breaks.resolve(world, found[("unmatched_internal", "c5")], "match", "same payment, other id", "asha",
                   found[("unmatched_external", "r9")])
    rows = settlement.run(world, D, actor="test").rows
    [manual] = [r for r in rows if r.status == "manual"]
    assert (manual.internal_ids, manual.external_ids, manual.amount_difference_minor, manual.decided_by) == (
        ("c5",), ("r9",), 2500, "asha")


def cli(ws, *args, code=0) -> str:
    env = {**os.environ, "OPS_HOME": str(ws.settings.home), "OPS_DATABASE_URL": ws.settings.database_url}
    p = subprocess.run([CLI, "recon", *args], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == code, (p.stdout, p.stderr)
    return p.stdout + p.stderr


def test_cli_run_breaks_resolve(world):
    out = cli(world, "run", "--date", "2026-11-01", "--dry-run")
    assert out.startswith("settlement 2026-11-01: 9 rows (dry run, nothing written)\n")
    assert result_count(world) == 0
    out = cli(world, "run", "--date", "2026-11-01", "--format", "json")
    assert {(r["status"], r["currency"]): (r["count"], r["internal"], r["external"], r["difference"])
            for r in json.loads(out)} == {
        ("matched", "EUR"): (3, "143.00", "143.00", "0.00"),
        ("matched_with_difference", "EUR"): (1, "20.00", "19.50", "0.50"),
        ("unmatched_external", "EUR"): (1, "0.00", "5.00", "-5.00"),
        ("unmatched_external", "USD"): (1, "0.00", "10.00", "-10.00"),
        ("unmatched_internal", "EUR"): (3, "80.00", "0.00", "80.00"),
    }
    listed = json.loads(cli(world, "breaks", "--status", "unmatched_internal", "--format", "json"))
    assert sorted((b["internal_ids"], b["internal_amount_minor"]) for b in listed) == [
        ("c4", 1000), ("c5", 3000), ("c6", 4000)]
    c5 = next(b["break_id"] for b in listed if b["internal_ids"] == "c5")
    assert len(json.loads(cli(world, "breaks", "--older-than", "3", "--format", "json"))) == 6  # today > D+3
    assert json.loads(cli(world, "breaks", "--older-than", "100000", "--format", "json")) == []
    out = cli(world, "resolve", c5, "--action", "write-off", "--note", "merchant refunded offline",
              "--actor", "asha")
    assert out.startswith(f"decision 1: write-off {c5}")
    cli(world, "run", "--date", "2026-11-01")
    after = json.loads(cli(world, "breaks", "--format", "json"))
    assert len(after) == 5 and "c5" not in {b["internal_ids"] for b in after}
    [written_off] = [r for r in store.latest_results(world, "settlement", D) if r.status == "manual"]
    assert (written_off.internal_ids, written_off.reason, written_off.note) == (
        ("c5",), "write-off", "merchant refunded offline")
    runs = json.loads(cli(world, "runs", "--name", "settlement", "--format", "json"))
    assert [(r["business_date"], r["latest"], r["rows"], r["manual"]) for r in runs] == [
        ("2026-11-01", True, 9, 1), ("2026-11-01", False, 9, 0)]
    assert "error: break 'nope' is not a break of the latest runs" in cli(
        world, "resolve", "nope", "--action", "match", "--note", "x", code=1)
    assert "error: date: '2026-13-01' is not an ISO date" in cli(world, "run", "--date", "2026-13-01", code=1)
    assert "error: name: 'nope' is not one of payouts, portal, settlement" in cli(
        world, "run", "--date", "2026-11-01", "--name", "nope", code=1)


def test_business_date_is_local_to_ops_timezone(world, tmp_path):
    late_evening = op("tz1", "3.00", date="2026-10-31T20:00:00Z")  # 1 November, 05:00 in Tokyo
    ingest.ingest_file(world, write_ops(tmp_path / "tz.csv", [late_evening]), "confirmed")
    ids = {i for r in settlement.run(world, D, actor="test", dry_run=True).rows for i in r.internal_ids}
    assert "tz1" not in ids
    tokyo = Workspace(make_settings(world.settings.home, world.settings.database_url, OPS_TIMEZONE="Asia/Tokyo"))
    try:
        ids = {i for r in settlement.run(tokyo, D, actor="test", dry_run=True).rows for i in r.internal_ids}
        assert {"tz1", "c1"} <= ids
    finally:
        tokyo.close()
