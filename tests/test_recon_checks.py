"""The reconciliation checks over the lake: they pass on a run, and fail with examples when a record is in
two rows, when input records are missing from the run or sums differ, and when breaks outlive the window."""

from datetime import UTC, date, datetime

import polars as pl

from ops_pipeline.ledger import ingest
from ops_pipeline.recon import checks, settlement, store
from tests.factories import op, write_ops
from tests.test_recon_settlement import D, world  # noqa: F401 (fixture)


def test_checks_pass_on_a_run_and_name_what_is_wrong(world, tmp_path):  # noqa: F811
    summary = settlement.run(world, D, actor="test")
    assert checks.check_exclusive(world, "settlement", D).passed
    assert checks.check_complete(world, "settlement", D).passed
    # A CO of D arrives after the run: the run no longer accounts for every record, nor the sum.
    ingest.ingest_file(world, write_ops(tmp_path / "late.csv", [op("c9", "2.50")]), "confirmed")
    late = checks.check_complete(world, "settlement", D)
    assert (late.passed, late.count) == (False, 2)
    assert late.examples == [
        {"side": "internal", "id": "c9", "problem": "input record in no row"},
        {"side": "internal", "currency": "EUR", "problem": "sums differ", "records_minor": 24550,
         "rows_minor": 24300}]
    # A run whose rows hold c1 twice (written as the latest run).
    c1 = summary.frame.filter(pl.col("internal_ids").list.first() == "c1")
    store.write_results(world, pl.concat([summary.frame, c1]), "99999999T999999999999-twice", datetime.now(UTC))
    twice = checks.check_exclusive(world, "settlement", D)
    assert (twice.passed, twice.examples) == (False, [{"side": "internal", "id": "c1", "rows": 2},
                                                      {"side": "external", "id": "c1", "rows": 2}])


def test_aged_breaks_follow_the_window(world):  # noqa: F811
    settlement.run(world, D, actor="test")
    assert checks.check_aged_breaks(world, "settlement", date(2026, 11, 4)).passed  # D + 3: still in time
    aged = checks.check_aged_breaks(world, "settlement", date(2026, 11, 5))
    assert (aged.passed, aged.count, len(aged.examples)) == (False, 6, 5)
    assert aged.description == "6 breaks of settlement from before 2026-11-02 (window 3 days)"
    assert checks.check_aged_breaks(world, "payouts", date(2026, 11, 5)).passed
