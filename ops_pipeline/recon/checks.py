"""Data-quality checks of a reconciliation's latest run of a date, over the lake (no orchestration here):
exclusive matching, every input record accounted for to the minor unit, and breaks left beyond the window."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import TYPE_CHECKING

from ops_pipeline.ledger.snapshots import CheckResult
from ops_pipeline.recon import breaks, registry, store

if TYPE_CHECKING:
    from ops_pipeline.workspace import Workspace

EXAMPLES = 5
SIDES = ("internal", "external")


def check_exclusive(ws: Workspace, recon: str, business_date: date) -> CheckResult:
    """No record is in two rows of the latest run of the date (each side's ids appear at most once)."""
    rows = store.latest_results(ws, recon, business_date)
    seen = {s: Counter(i for r in rows for i in getattr(r, f"{s}_ids")) for s in SIDES}
    twice = [{"side": s, "id": i, "rows": n} for s in SIDES for i, n in sorted(seen[s].items()) if n > 1]
    return CheckResult(not twice, f"{len(twice)} records in more than one row of {recon} {business_date}",
                       len(twice), twice[:EXAMPLES])


def check_complete(ws: Workspace, recon: str, business_date: date) -> CheckResult:
    """Matched + unmatched rows of the latest run hold exactly the date's input records, and per side and
    currency the rows' amounts sum to the records' amounts to the minor unit."""
    rows = store.latest_results(ws, recon, business_date)
    problems: list[dict] = []
    for side, records in zip(SIDES, registry.RECORDS[recon](ws, business_date), strict=True):
        in_rows = {i for r in rows for i in getattr(r, f"{side}_ids")}
        in_input = set(records["id"].to_list())
        problems += [{"side": side, "id": i, "problem": "input record in no row"}
                     for i in sorted(in_input - in_rows)]
        problems += [{"side": side, "id": i, "problem": "row names no input record"}
                     for i in sorted(in_rows - in_input)]
        expected = Counter()
        for currency, amount in zip(records["currency"].to_list(), records["amount"].to_list(), strict=True):
            expected[currency] += amount
        got = Counter()
        for r in rows:
            got[r.currency] += getattr(r, f"{side}_amount_minor")
        problems += [{"side": side, "currency": c, "problem": "sums differ", "records_minor": expected[c],
                      "rows_minor": got[c]}
                     for c in sorted(set(expected) | set(got)) if expected[c] != got[c]]
    what = f"{len(problems)} differences between the rows of {recon} {business_date} and its input records"
    return CheckResult(not problems, what, len(problems), problems[:EXAMPLES])


def check_aged_breaks(ws: Workspace, recon: str, today: date) -> CheckResult:
    """No break of `recon` older than its window (`registry.window_days`) on `today`."""
    window = registry.window_days(ws, recon)
    old = breaks.open_breaks(ws, recon=recon, older_than_days=window, today=today)
    examples = [{k: b[k] for k in ("break_id", "business_date", "status", "internal_ids", "external_ids",
                                   "amount_difference_minor", "currency")} for b in old[:EXAMPLES]]
    return CheckResult(not old, f"{len(old)} breaks of {recon} from before {today - timedelta(days=window)} "
                       f"(window {window} days)", len(old), examples)
