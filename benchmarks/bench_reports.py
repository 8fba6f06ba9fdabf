"""A month's finance report (`ops_pipeline.reports.build.build_month`) over a large lake: 300 merchants,
10M balance-operations log entries over four months, and the month's settlement results.

The data is written straight into the Delta tables (polars Parquet files committed in one Delta transaction,
as the ledger's own fast path does), not ingested: the benchmark measures the report, not the ledger.
Target: <= 30 s. `--entries N` runs a smaller size. Results in benchmarks/results/reports.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from benchmarks._machine import wait_idle
from ops_pipeline.lake.tables import BALANCE_OPERATIONS, RECON_RESULTS
from ops_pipeline.reports import build
from ops_pipeline.settings import Settings
from ops_pipeline.workspace import Workspace

RESULTS = Path(__file__).resolve().parent / "results" / "reports.json"
MERCHANTS = 300
CURRENCIES = ["EUR", "USD", "GBP", "JPY", "BHD"]
START = datetime(2026, 8, 1, tzinfo=UTC)
SECONDS = 122 * 86_400  # August to November
MONTH = "2026-11"
# (source, type, sign, weight): captures and their fees on both sides, refunds, payouts, adjustments
KINDS = [("CO", "capture", 1, 34), ("CO", "psp_fee", -1, 34), ("RO", "capture", 1, 13),
         ("RO", "psp_fee", -1, 13), ("CO", "refund", -1, 2), ("RO", "refund", -1, 2),
         ("PAYOUT", "payout", -1, 1), ("ADJUSTMENT", "adjustment", 1, 1)]


def _draw(values: range, n: int, seed: int) -> pl.Series:
    return pl.Series(values).sample(n, with_replacement=True, seed=seed)


def log_entries(n: int, first: int, seed: int) -> pl.DataFrame:
    """`n` log entries with ids from `first`, deterministic for a seed."""
    kinds = [k for k in KINDS for _ in range(k[3])]
    kind = _draw(range(len(kinds)), n, seed)
    i = pl.int_range(first, first + n, eager=True)
    merchant = _draw(range(MERCHANTS), n, seed + 1)
    df = pl.DataFrame({"i": i, "k": kind, "m": merchant,
                       "units": _draw(range(100, 50_000), n, seed + 2),
                       "s": _draw(range(SECONDS), n, seed + 3)})
    source = pl.col("k").replace_strict(dict(enumerate(k[0] for k in kinds)), return_dtype=pl.String)
    typ = pl.col("k").replace_strict(dict(enumerate(k[1] for k in kinds)), return_dtype=pl.String)
    sign = pl.col("k").replace_strict(dict(enumerate(k[2] for k in kinds)), return_dtype=pl.Int64)
    date = pl.lit(START) + pl.duration(seconds=pl.col("s"))
    return df.select(
        uuid=pl.format("e-{}", pl.col("i")), external_reference=pl.lit(None, pl.String),
        amount_minor=pl.col("units") * sign, currency=pl.col("m").mod(7).clip(0, 4).replace_strict(
            dict(enumerate(CURRENCIES)), return_dtype=pl.String),
        type=typ, falcon_operation_id=pl.format("op-{}", pl.col("i")), source=source,
        operation_date=date, recorded_at=date, local_merchant_id=pl.lit(None, pl.String),
        shop_id=pl.lit(None, pl.String), balance_shop_id=pl.lit(None, pl.String), psp_id=pl.lit("psp1"),
        merchant_id=pl.format("M{}", pl.col("m")), op_key=pl.col("i"), ingest_id=pl.lit("bench"),
    )


def recon_results(n: int, seed: int) -> pl.DataFrame:
    """`n` settlement results over the month's dates: 90% matched, the rest differences and breaks."""
    status = pl.Series(["matched"] * 90 + ["matched_with_difference"] * 3 + ["unmatched_internal"] * 5
                       + ["unmatched_external"] * 2).sample(n, with_replacement=True, seed=seed)
    df = pl.DataFrame({"i": pl.int_range(0, n, eager=True), "status": status,
                       "units": _draw(range(100, 50_000), n, seed + 1)})
    day = pl.lit(datetime(2026, 11, 1).date()) + pl.duration(days=pl.col("i") % 30)
    internal = pl.when(pl.col("status") == "unmatched_external").then(0).otherwise(pl.col("units"))
    external = (pl.when(pl.col("status") == "unmatched_internal").then(0)
                .when(pl.col("status") == "matched_with_difference").then(pl.col("units") - 7)
                .otherwise(pl.col("units")))
    op_id = pl.format("op-{}", pl.col("i"))
    return df.select(
        result_id=pl.format("bench-{}", pl.col("i")), recon=pl.lit("settlement"), business_date=day,
        internal_ids=pl.concat_list(op_id), external_ids=pl.concat_list(op_id), rule_id=pl.lit("exact"),
        status="status", internal_amount_minor=internal, external_amount_minor=external,
        amount_difference_minor=internal - external, currency=pl.lit("EUR"), reason=pl.lit(""),
        run_id=pl.format("run-{}", pl.col("i") % 30), decided_by=pl.lit(None, pl.String),
        note=pl.lit(None, pl.String), created_at=pl.lit(datetime(2026, 12, 1, tzinfo=UTC)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--results", type=int, default=1_000_000, help="settlement result rows of the month")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ops-bench-reports-"))
    ws = Workspace(Settings.from_env({**os.environ, "OPS_HOME": str(home), "OPS_DATABASE_URL": "",
                                      "OPS_LAKE_URI": ""}))
    ws.init()
    started = time.perf_counter()
    chunk = 2_500_000
    frames = [log_entries(min(chunk, args.entries - at), at, seed=at) for at in range(0, args.entries, chunk)]
    ws.lake.commit(ws.lake.stage(BALANCE_OPERATIONS.name, frames))
    ws.lake.commit(ws.lake.stage(RECON_RESULTS.name, [recon_results(args.results, seed=11)]))
    generated = time.perf_counter() - started
    print(f"data: {args.entries:,} log entries, {args.results:,} results in {generated:.1f} s", flush=True)
    machine = wait_idle(max_busy=0.25, max_wait=120)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        built = build.build_month(ws, MONTH)
        runs.append(round(time.perf_counter() - t0, 2))
        print(f"month report: {runs[-1]:.2f} s, {built.balances} balances, {built.untied} untied", flush=True)
    out = {"entries": args.entries, "results": args.results, "merchants": MERCHANTS, "month": MONTH,
           "seconds": runs, "median_s": sorted(runs)[1], "target_s": 30, "balances": built.balances,
           "untied": built.untied, "sizes": {p.name: p.stat().st_size for p in built.files},
           "cpus": os.cpu_count(), **machine, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))
    ws.close()


if __name__ == "__main__":
    main()
