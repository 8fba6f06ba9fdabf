"""The demo world goes through the ledger: every row is ingested, a duplicate or quarantined, and replay
matches the cache; every operation type is in the log and only the spoiled rows are quarantined. (Its files
once made a polars 2.1 panic in a faster merchant lookup.)"""

import csv
from collections import Counter
from datetime import date

from ops_pipeline import analytics
from ops_pipeline.demo.world import build_world
from ops_pipeline.ledger import OPERATION_TYPES, balances, ingest, merchants

# what the world's bad rows and its three late shops (never loaded here) are quarantined for
SPOILED = {"non_positive_amount", "unknown_currency", "unknown_type", "bad_date", "too_many_decimals",
           "conflicting_duplicate", "unknown_merchant"}


def test_a_month_of_the_demo_world(sqlite_ws, tmp_path):
    world = build_world(tmp_path / "world", operations=20_000, merchants=300, seed=7, start=date(2026, 10, 1))
    merchants.load(sqlite_ws, world.merchants_file, replace_all=True)
    rows = accounted = 0
    made: Counter = Counter()  # (source, type) -> rows of the files
    for _, co, ro in world.days:
        for path, kind, source in ((co, "confirmed", "CO"), (ro, "reconciled", "RO")):
            r = ingest.ingest_file(sqlite_ws, path, kind)
            rows += r.rows
            accounted += r.ingested + r.duplicates + r.quarantined
            with open(path, newline="") as f:
                made.update((source, row["type"]) for row in csv.DictReader(f))
    assert accounted == rows > 30_000
    assert balances.rebuild(sqlite_ws).differences == []

    con = analytics.connect(sqlite_ws)
    logged = dict(((s, t), n) for s, t, n in con.sql(
        "SELECT source, type, count(*) FROM balance_operations WHERE source IN ('CO', 'RO') GROUP BY ALL"
    ).fetchall())
    reasons = {r for (r,) in con.sql("SELECT DISTINCT reason_code FROM ledger_quarantine").fetchall()}
    late_types = {t for (t,) in con.sql(
        "SELECT DISTINCT raw->>'type' FROM ledger_quarantine WHERE reason_code = 'unknown_merchant'").fetchall()}
    con.close()
    others = [t for t in OPERATION_TYPES if t not in ("capture", "refund")]
    for source in ("CO", "RO"):
        for kind in others:  # every row of the other types is in the log: none quarantined
            assert logged[source, kind] == made[source, kind] > 0, (source, kind)
        assert 0 < logged[source, "dispute_fee"] < logged[source, "chargeback"]  # some merchants charge one
        assert logged[source, "rolling_reserve"] > 0
    assert reasons == SPOILED
    assert late_types == {"capture", "refund"}  # only those wait for their merchant context
