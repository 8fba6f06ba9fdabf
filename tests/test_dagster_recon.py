"""Reconciliation in Dagster on a real instance, SQLite and PostgreSQL: daily partitions materialized twice
(a backfill repeated) give the same results, the same break ids and one ticket per break; a late RO
resolves its break's ticket at the next materialization; a manual resolution resolves it at once."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import dagster as dg
import pytest
from sqlalchemy import select

import definitions
from assets.partitions import DAILY
from assets.recon.assets import AGED_BREAKS, COMPLETE, EXCLUSIVE, RECON_ASSETS
from ops_pipeline import analytics
from ops_pipeline.audit import history
from ops_pipeline.db.schema import tickets
from ops_pipeline.ledger import ingest
from ops_pipeline.recon import breaks, settlement, store
from resources.ops import OpsResource
from tests.factories import op, write_ops

DAYS = ("2026-11-01", "2026-11-02", "2026-11-03")


def on(day: str) -> str:
    return f"{day}T10:00:00Z"


@pytest.fixture
def world(ws, tmp_path):
    cos = [op(f"c{n}-{d}", "10.00", date=on(d)) for d in DAYS for n in (1, 2)]
    ros = [op(f"c1-{d}", "10.00", date=on(d)) for d in DAYS]  # c2 of each day waits for its RO
    for kind, rows in (("confirmed", cos), ("reconciled", ros)):
        ingest.ingest_file(ws, write_ops(tmp_path / f"{kind}.csv", rows), kind)
    return ws


def test_definitions_hold_the_recon_assets_partitioned_by_day_with_their_checks():
    specs = {s.key.to_user_string(): s for s in definitions.defs.resolve_all_asset_specs() if s.group_name == "recon"}
    assert set(specs) == {"settlement_recon", "payout_recon", "portal_recon", "recon_breaks"}
    assert all(s.partitions_def == DAILY and s.description for s in specs.values())
    assert {d.asset_key.to_user_string() for d in specs["recon_breaks"].deps} == {"settlement_recon", "payout_recon",
                                                                                  "portal_recon"}
    graph = definitions.defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys if k.asset_key.path[0] in specs}
    assert checks == {("settlement_recon", EXCLUSIVE), ("settlement_recon", COMPLETE), ("payout_recon", EXCLUSIVE),
                      ("payout_recon", COMPLETE), ("portal_recon", EXCLUSIVE), ("portal_recon", COMPLETE),
                      ("recon_breaks", AGED_BREAKS)}


def materialize(ws, day: str) -> dg.ExecuteInProcessResult:
    ops = OpsResource(ops_home=str(ws.settings.home), database_url=ws.settings.database_url)
    with dg.instance_for_test() as instance:
        return dg.materialize(RECON_ASSETS, instance=instance, resources={"ops": ops}, partition_key=day)


def recon_tickets(ws) -> list[tuple]:
    t = tickets.c
    with ws.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(t.id, t.reference, t.status).where(
            t.source == "reconciliation").order_by(t.id))]


def test_backfill_twice_is_idempotent_and_tickets_follow_the_breaks(world, tmp_path):
    first = {d: materialize(world, d) for d in DAYS}
    ids = {b["break_id"] for b in breaks.open_breaks(world)}
    assert len(ids) == 3 and all(r.success for r in first.values())
    meta = first[DAYS[0]].asset_materializations_for_node("settlement_recon")[0].metadata
    assert meta["counts"].value["matched"] == 1 and meta["counts"].value["unmatched_internal"] == 1
    assert "| unmatched_internal | EUR | 1 | 10.00 | 0.00 | 10.00 |" in meta["statuses"].value
    assert meta["run_id"].value and meta["lake_version"].value >= 1
    evaluated = sorted((c.asset_key.to_user_string(), c.check_name, c.passed, c.severity.value)
                       for c in first[DAYS[0]].get_asset_check_evaluations())
    assert evaluated == [
        ("payout_recon", "all_records_accounted_for", True, "ERROR"),
        ("payout_recon", "no_record_matched_twice", True, "ERROR"),
        ("portal_recon", "all_records_accounted_for", True, "ERROR"),
        ("portal_recon", "no_record_matched_twice", True, "ERROR"),
        ("recon_breaks", "no_break_beyond_window", False, "WARN"),  # the c2s are past 3 days by now
        ("settlement_recon", "all_records_accounted_for", True, "ERROR"),
        ("settlement_recon", "no_record_matched_twice", True, "ERROR")]
    assert {(r[1], r[2]) for r in recon_tickets(world)} == {(i, "open") for i in ids}
    for d in DAYS:  # the same backfill again
        assert materialize(world, d).success
    assert {b["break_id"] for b in breaks.open_breaks(world)} == ids  # stable ids
    assert len(recon_tickets(world)) == 3  # no second ticket
    for d in DAYS:  # the latest run of each date holds each record once
        assert len(store.latest_results(world, "settlement", date.fromisoformat(d))) == 2
    runs = analytics.connect(world).sql("SELECT count(DISTINCT run_id) FROM lake_recon_results "
                                        "WHERE recon = 'settlement'").fetchall()[0][0]
    assert runs == 6  # history kept: two runs per date

    # The late RO of c2 on the first day arrives: the next materialization matches it and resolves the ticket.
    ingest.ingest_file(world, write_ops(tmp_path / "late.csv", [op(f"c2-{DAYS[0]}", "10.00", date=on(DAYS[0]))]),
                       "reconciled")
    assert materialize(world, DAYS[0]).success
    left = {b["break_id"] for b in breaks.open_breaks(world)}
    [gone] = ids - left
    assert {r[1]: r[2] for r in recon_tickets(world)} == {**dict.fromkeys(left, "open"), gone: "resolved"}

    # A manual write-off resolves its ticket at once, with the note as the audit reason.
    chosen = sorted(left)[0]
    breaks.resolve(world, chosen, "write-off", "refunded offline", "asha")
    [(ticket_id, _, status)] = [r for r in recon_tickets(world) if r[1] == chosen]
    assert status == "resolved"
    with world.engine.connect() as conn:
        resolved = [h for h in history(conn, "ticket", str(ticket_id)) if h["action"] == "resolved"]
    assert [(h["actor"], h["reason"]) for h in resolved] == [("asha", "write-off: refunded offline")]
    assert materialize(world, DAYS[1]).success and len(recon_tickets(world)) == 3  # no new ticket


def test_concurrent_syncs_open_one_ticket_per_break(world):
    settlement.run(world, date.fromisoformat(DAYS[0]), actor="test")
    with ThreadPoolExecutor(4) as pool:
        opened = list(pool.map(lambda _: breaks.sync_tickets(world)[0], range(4)))
    assert sum(len(o) for o in opened) == 1
    assert [r[2] for r in recon_tickets(world)] == ["open"]
