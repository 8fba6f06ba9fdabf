"""The demo world goes through the ledger: every row is ingested, a duplicate or quarantined, and replay
matches the cache. (Its files once made a polars 2.1 panic in a faster merchant lookup.)"""

from datetime import date

from ops_pipeline.demo.world import build_world
from ops_pipeline.ledger import balances, ingest, merchants


def test_a_month_of_the_demo_world(sqlite_ws, tmp_path):
    world = build_world(tmp_path / "world", operations=20_000, merchants=300, seed=7, start=date(2026, 10, 1))
    merchants.load(sqlite_ws, world.merchants_file, replace_all=True)
    rows = accounted = 0
    for _, co, ro in world.days:
        for path, kind in ((co, "confirmed"), (ro, "reconciled")):
            r = ingest.ingest_file(sqlite_ws, path, kind)
            rows += r.rows
            accounted += r.ingested + r.duplicates + r.quarantined
    assert accounted == rows > 30_000
    assert balances.rebuild(sqlite_ws).differences == []
