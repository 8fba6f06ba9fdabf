"""Balances, holds, adjustments, as-of reads and replay, on SQLite and PostgreSQL."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from ops_pipeline import analytics, audit
from ops_pipeline.db.schema import balance_cache, balance_cache_state, ledger_holds
from ops_pipeline.errors import Conflict, InsufficientFunds, InvalidInput, NotFound
from ops_pipeline.lake.tables import BALANCE_OPERATIONS
from ops_pipeline.ledger import balances, holds, ingest, snapshots
from ops_pipeline.ledger.entries import Entry, post_entries
from tests.factories import op, write_ops


@pytest.fixture
def funded(ws, tmp_path):
    """M1 with 100.00 EUR captured and reconciled (fee 3.20): settled = available = 96.80."""
    f = write_ops(tmp_path / "ops.csv", [op("c1", "100.00", date="2026-10-15T10:00:00Z")])
    ingest.ingest_file(ws, f, "confirmed")
    ingest.ingest_file(ws, f, "reconciled")
    return ws


def one(ws, merchant="M1"):
    [b] = balances.get_balances(ws, merchant)
    return b


def test_hold_reserves_available_and_release_returns_it(funded):
    ws = funded
    h = holds.place_hold(ws, "M1", "EUR", 5000, actor="alice", hold_id="h1", reason="payout")
    b = one(ws)
    assert (b.settled_minor, b.held_minor, b.available_minor) == (9680, 5000, 4680)
    assert b.to_dict()["available"] == "46.80"
    assert holds.place_hold(ws, "M1", "EUR", 5000, actor="alice", hold_id="h1") == h  # idempotent
    with pytest.raises(Conflict, match="hold_id: 'h1' already exists with other values"):
        holds.place_hold(ws, "M1", "EUR", 4000, actor="alice", hold_id="h1")
    with pytest.raises(InsufficientFunds, match=r"amount: 46.81 EUR exceeds the available 46.80 EUR"):
        holds.place_hold(ws, "M1", "EUR", 4681, actor="alice")
    holds.end_hold(ws, "h1", actor="bob", reason="paid")
    assert one(ws).available_minor == 9680
    with pytest.raises(Conflict, match="already released"):
        holds.end_hold(ws, "h1", actor="bob")
    with pytest.raises(NotFound):
        holds.end_hold(ws, "nope", actor="bob")
    with ws.engine.connect() as conn:
        trail = [(r["action"], r["actor"]) for r in audit.history(conn, "hold", "h1")]
    assert trail == [("place", "alice"), ("released", "bob")]


def test_holds_expire_by_themselves_and_the_sweeper_records_it(funded):
    ws = funded
    soon = datetime.now(UTC) + timedelta(seconds=60)
    holds.place_hold(ws, "M1", "EUR", 1000, actor="a", hold_id="h-exp", expires_at=soon)
    assert one(ws).held_minor == 1000
    with ws.engine.begin() as conn:  # time passes
        conn.execute(update(ledger_holds).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert one(ws).held_minor == 0  # reads ignore expired holds at once
    assert holds.expire_holds(ws) == 1
    assert holds.get_hold(ws, "h-exp").status == "expired"
    assert holds.expire_holds(ws) == 0
    with pytest.raises(InvalidInput, match="expires_at"):
        holds.place_hold(ws, "M1", "EUR", 1, actor="a", expires_at=datetime.now(UTC) - timedelta(seconds=1))


def test_hold_on_a_merchant_without_balance_is_insufficient(ws):
    with pytest.raises(InsufficientFunds, match=r"exceeds the available 0\.00 EUR"):
        holds.place_hold(ws, "M4", "EUR", 1, actor="a")


def test_concurrent_holds_never_overdraw(funded):
    ws = funded
    results = []

    def grab(i):
        try:
            holds.place_hold(ws, "M1", "EUR", 3000, actor=f"w{i}", hold_id=f"c{i}")
            results.append("ok")
        except InsufficientFunds:
            results.append("refused")

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] * 3 + ["refused"] * 3  # 3 x 30.00 fit in 96.80, a 4th does not
    assert one(ws).held_minor == 9000


def test_adjustments_are_new_entries_idempotent_by_id(funded):
    ws = funded
    adj = Entry("ADJUSTMENT", "adj-1", "M1", "EUR", -680, "adjustment", "TICKET-7")
    assert post_entries(ws, [adj], "t").posted == 1
    again = post_entries(ws, [adj], "t")
    assert (again.posted, again.duplicates) == (0, 1)
    with pytest.raises(Conflict, match="entry_id: 'adj-1' was already posted with different content"):
        post_entries(ws, [Entry("ADJUSTMENT", "adj-1", "M1", "EUR", -681, "adjustment")], "t")
    b = one(ws)
    assert (b.confirmed_minor, b.settled_minor) == (9000, 9000)  # adjustments count in both
    with pytest.raises(InvalidInput, match="source: 'CO'"):
        Entry("CO", "x", "M1", "EUR", 1, "capture")


def test_balance_is_exact_when_entries_land_after_the_cache(funded):
    ws = funded
    version = balances.cached_version(ws)
    post_entries(ws, [Entry("PAYOUT", "p1", "M1", "EUR", -1680, "payout")], "t")
    with ws.engine.begin() as conn:  # roll the cache back one commit: the log is ahead of it
        conn.execute(
            update(balance_cache).values(
                confirmed_minor=balance_cache.c.confirmed_minor + 1680,
                settled_minor=balance_cache.c.settled_minor + 1680,
                entries=balance_cache.c.entries - 1,
            )
        )
        conn.execute(update(balance_cache_state).values(applied_version=version))
    b = one(ws)
    assert (b.confirmed_minor, b.settled_minor, b.lake_version) == (8000, 8000, version + 1)
    assert balances.refresh_cache(ws) == (version + 1, 1)
    assert balances.rebuild(ws).differences == []


def test_a_read_behind_the_cache_adds_the_ingests_remembered_sums_equal_to_the_lake(funded, tmp_path):
    """A read whose cache rows predate an ingest of this process adds that commit's folded sums as the ingest
    kept them (no lake read), and they equal what a process without them reads from the lake."""
    ws, now = funded, datetime.now(UTC)
    with ws.engine.connect() as conn:
        stale = conn.execute(balances.CACHE_QUERY, {"merchant_id": "M1", "now": now}).all()
    before = stale[0][0]
    ingest.ingest_file(ws, write_ops(tmp_path / "more.csv", [op("c2", "50.00"), op("c3", "7.00")]), "confirmed")
    kept = balances.remembered(ws, "M1", before, before + 1)
    assert [(r["currency"], r["confirmed_minor"], r["settled_minor"]) for r in kept] == [("EUR", 5475, 0)]  # less fees
    fresh = type(ws)(ws.settings)
    try:
        assert balances.remembered(fresh, "M1", before, before + 1) is None
        [here] = balances.exact(ws, "M1", None, stale, [], now)
        [there] = balances.exact(fresh, "M1", None, stale, [], now)
    finally:
        fresh.close()
    assert here == there
    assert (here.confirmed_minor, here.settled_minor, here.lake_version) == (9680 + 5475, 9680, before + 1)
    assert (one(ws).confirmed_minor, one(ws).lake_version) == (9680 + 5475, before + 1)


def test_rebuild_reports_a_tampered_cache(funded):
    ws = funded
    assert balances.rebuild(ws).differences == []
    with ws.engine.begin() as conn:
        conn.execute(update(balance_cache).values(settled_minor=balance_cache.c.settled_minor + 1))
    [diff] = balances.rebuild(ws).differences
    assert (diff["merchant_id"], diff["settled_minor"], diff["settled_minor_cache"]) == ("M1", 9680, 9681)
    assert not snapshots.check_replay(ws).passed


def test_balance_as_of_a_past_time(funded, tmp_path):
    ws = funded
    ingest.ingest_file(ws, write_ops(tmp_path / "n.csv", [op("c2", "50.00", date="2026-11-02T00:00:00Z")]), "confirmed")
    holds.place_hold(ws, "M1", "EUR", 100, actor="a")
    past = datetime(2026, 11, 1, tzinfo=UTC)
    [b] = balances.balances_as_of(ws, "M1", past)
    assert (b.confirmed_minor, b.settled_minor, b.held_minor) == (9680, 9680, 0)
    [now] = balances.balances_as_of(ws, "M1", datetime.now(UTC) + timedelta(seconds=1))
    assert (now.confirmed_minor, now.held_minor) == (9680 + 5000 - 175, 100)
    with pytest.raises(NotFound):
        balances.balances_as_of(ws, "M1", datetime(2020, 1, 1, tzinfo=UTC))


def test_snapshot_is_incremental_and_feeds_the_merchant_balances_view(funded, tmp_path):
    ws = funded
    first = snapshots.write_snapshot(ws)
    assert (first.balances, first.new_entries) == (1, 0)  # ingest already folded its entries into the cache
    post_entries(ws, [Entry("ADJUSTMENT", "a", "M2", "JPY", 700, "adjustment")], "t")
    with ws.engine.begin() as conn:  # cache one commit behind: the snapshot folds only that commit
        conn.execute(update(balance_cache_state).values(applied_version=first.lake_version))
        conn.execute(balance_cache.delete().where(balance_cache.c.merchant_id == "M2"))
    second = snapshots.write_snapshot(ws)
    assert (second.balances, second.new_entries, second.lake_version) == (2, 1, first.lake_version + 1)
    con = analytics.connect(ws)
    got = con.sql("SELECT merchant_id, currency, available::VARCHAR FROM merchant_balances ORDER BY 1").fetchall()
    assert got == [("M1", "EUR", "96.8000"), ("M2", "JPY", "700.0000")]


def test_checks_find_duplicate_keys_and_missing_fee_rules(funded):
    ws = funded
    assert snapshots.check_unique_keys(ws).passed and snapshots.check_fee_rules(ws).passed
    con = analytics.connect(ws)
    dup = con.sql("SELECT * FROM lake_balance_operations LIMIT 1").to_arrow_table()
    ws.lake.append(BALANCE_OPERATIONS.name, dup)  # a writer bypassing ingest
    bad = snapshots.check_unique_keys(ws)
    assert (bad.passed, bad.count) == (False, 1)
    orphan = con.sql(
        "SELECT * REPLACE ('psp-x' AS psp_id, 'zz' AS falcon_operation_id) FROM lake_balance_operations LIMIT 1"
    ).to_arrow_table()
    ws.lake.append(BALANCE_OPERATIONS.name, orphan)
    fee = snapshots.check_fee_rules(ws)
    assert (fee.passed, fee.count, fee.examples[0]["psp_id"]) == (False, 1, "psp-x")


def test_monthly_turnover(funded, tmp_path):
    ws = funded
    ingest.ingest_file(
        ws, write_ops(tmp_path / "n.csv", [op("r9", "10.00", type="refund", date="2026-10-20")]), "confirmed"
    )
    con = analytics.connect(ws)
    got = con.sql(
        "SELECT month::VARCHAR, source, captures, captured::VARCHAR, refunded::VARCHAR, fees::VARCHAR, net::VARCHAR "
        "FROM monthly_turnover WHERE merchant_id = 'M1' ORDER BY source"
    ).fetchall()
    assert got == [
        ("2026-10-01", "CO", 1, "100.0000", "10.0000", "3.2000", "86.8000"),
        ("2026-10-01", "RO", 1, "100.0000", "0.0000", "3.2000", "96.8000"),
    ]


def test_cache_state_survives_in_the_database(funded):
    with funded.engine.connect() as conn:
        assert conn.execute(select(balance_cache_state.c.applied_version)).scalar_one() >= 1
