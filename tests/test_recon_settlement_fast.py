"""Settlement's one-query path (`settlement.results`) gives exactly the engine's result frame (rows, order,
rule ids, statuses, amounts, reasons) on random logs, and steps aside for decisions and odd records; on
SQLite and PostgreSQL."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from ops_pipeline.errors import InvalidInput
from ops_pipeline.lake.tables import BALANCE_OPERATIONS, RECON_RESULTS
from ops_pipeline.recon import settlement, store
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings

D = date(2026, 11, 10)


def _row(op_id: str, source: str, amount: int, currency: str, merchant: str, psp: str, at: datetime,
         kind: str = "capture") -> dict:
    return {"uuid": f"{source}-{op_id}-{kind}", "external_reference": None, "amount_minor": amount,
            "currency": currency, "type": kind, "falcon_operation_id": op_id, "source": source,
            "operation_date": at, "recorded_at": datetime(2026, 12, 1, tzinfo=UTC), "local_merchant_id": None,
            "shop_id": None, "balance_shop_id": None, "psp_id": psp, "merchant_id": merchant,
            "op_key": 0, "ingest_id": "test"}


def _random_log(seed: int, n: int = 400) -> list[dict]:
    """COs around D with ROs early, on time, late and beyond the window, other amounts (ties in the gap
    included), currencies and merchants, refunds, lone ROs and fees that settlement ignores."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        op_id = f"op-{rnd.randrange(10**rnd.randint(1, 4))}-{i}"
        sign = -1 if rnd.random() < 0.2 else 1  # refunds are negative on both sides
        amount = sign * rnd.randint(1, 5000)
        currency, merchant, psp = rnd.choice(["EUR", "USD"]), rnd.choice(["M1", "M2", "M4"]), rnd.choice(
            ["psp1", "psp2", "psp3"])
        co_at = datetime(2026, 11, 10, tzinfo=UTC) + timedelta(days=rnd.randint(-3, 3), hours=rnd.randint(0, 23))
        if rnd.random() < 0.9:
            rows.append(_row(op_id, "CO", amount, currency, merchant, psp, co_at))
            if rnd.random() < 0.1:
                rows.append(_row(op_id, "CO", -rnd.randint(1, 90), currency, merchant, psp, co_at, "psp_fee"))
        if rnd.random() < 0.9:
            r = rnd.random()
            ro_amount = amount + sign * rnd.choice([1, 2, 3]) if r < 0.2 else amount
            ro_currency = ({"EUR", "USD"} - {currency}).pop() if 0.2 <= r < 0.3 else currency
            ro_merchant = "M9" if 0.25 <= r < 0.4 else merchant
            ro_at = co_at + timedelta(days=rnd.choice([-1, 0, 0, 1, 2, 3, 4, 6]), hours=rnd.randint(-5, 5))
            rows.append(_row(op_id, "RO", ro_amount, ro_currency, ro_merchant, psp, ro_at))
    return rows


def _append(ws: Workspace, rows: list[dict]) -> None:
    ws.lake.append(BALANCE_OPERATIONS.name, pa.Table.from_pylist(rows, BALANCE_OPERATIONS.schema))


@pytest.mark.parametrize(("seed", "zone"), [(1, "UTC"), (2, "America/New_York")])
def test_one_query_equals_the_engine_on_random_logs(ws, seed, zone):
    wide = Workspace(make_settings(ws.settings.home, ws.settings.database_url, OPS_RECON_WINDOWS="psp2=5",
                                   OPS_TIMEZONE=zone))
    _append(wide, _random_log(seed))
    statuses = set()
    for offset in range(-4, 5):
        day = D + timedelta(days=offset)
        fast = settlement.results(wide, day)
        assert_frame_equal(fast, settlement._matched(wide, day, "test"))
        statuses |= set(fast["status"])
    assert statuses == {"matched", "matched_with_difference", "unmatched_internal", "unmatched_external"}
    wide.close()


def test_decisions_and_duplicate_records_take_the_engine_path(ws):
    _append(ws, [_row("a", "CO", 100, "EUR", "M1", "psp1", datetime(2026, 11, 10, 9, tzinfo=UTC)),
                 _row("a", "RO", 90, "EUR", "M1", "psp1", datetime(2026, 11, 10, 9, tzinfo=UTC)),
                 _row("b", "CO", 50, "EUR", "M1", "psp1", datetime(2026, 11, 10, 9, tzinfo=UTC))])
    first = settlement.run(ws, D, actor="ops")
    assert first.counts["matched_with_difference"] == 1 and first.counts["unmatched_internal"] == 1
    store.decide(ws, "settlement", D, "write_off", ["b"], [], "lost", "ops")
    assert settlement.run(ws, D, actor="ops", dry_run=True).counts["manual"] == 1  # the engine applied it

    _append(ws, [_row("c", "RO", 7, "EUR", "M1", "psp1", datetime(2026, 11, 11, 9, tzinfo=UTC)),
                 _row("c", "RO", 7, "EUR", "M1", "psp1", datetime(2026, 11, 11, 10, tzinfo=UTC))])
    assert settlement.results(ws, D + timedelta(days=1)) is None
    with pytest.raises(InvalidInput, match="duplicate ids"):
        settlement.run(ws, D + timedelta(days=1), actor="ops")


def test_concurrent_runs_get_the_version_of_their_own_commit(ws):
    at = datetime(2026, 11, 10, 9, tzinfo=UTC)
    _append(ws, [_row(f"o{i}", side, 100 + i, "EUR", "M1", "psp1", at)
                 for i in range(9) for side in ("CO", "RO")])
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: settlement.run(ws, D, actor="ops"), range(6)))
    assert len({r.lake_version for r in runs}) == 6
    for r in runs:  # the commit of each run's version holds exactly that run's rows
        added = ws.lake.changes(RECON_RESULTS.name, r.lake_version - 1, r.lake_version,
                                ["run_id", "result_id"])
        assert set(added["run_id"].to_pylist()) == {r.run_id}
        assert sorted(added["result_id"].to_pylist()) == sorted(f"{r.run_id}-{i}" for i in range(9))
        assert r.counts["matched"] == 9
