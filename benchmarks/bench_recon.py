"""Settlement reconciliation speed (issue 11): one date of 5M COs against 5M ROs, within 2x of a bare
DuckDB hash join of the same data, peak memory <= 8 GiB.

The data goes straight into the Delta log `balance_operations` of a new workspace (`OPS_TIMEZONE=UTC`,
default 3-day window): `--cos` COs on business date D, and for them ROs dated D .. D+2, except that
0.5% have no RO, 0.5% an RO with another amount, 0.1% one with another currency, and a late tail of 1%
whose RO comes on D+5 (after the window: a break on its own date); plus `--cos`/100 ROs of D without a CO,
and a day of other COs and ROs on D-1 and D+4 (which D's run must skip). Then, each in its own process
(peak RSS = its VmHWM), in this order, `--repeat` times (interleaved, so the shared machine's noise hits
all three; the figure is the best of each):
- floor: DuckDB over the same Parquet files, CO full outer join RO on (operation, merchant, currency),
  the pairs materialised in a temporary table (the bare join, no windows or rules);
- dry: `settlement.run(..., dry_run=True)` (without decisions: one DuckDB join of the date's CO and RO);
- recorded: `settlement.run(...)` (the same, and the results appended to `recon_results`).

    .venv/bin/python -m benchmarks.bench_recon                      # full size
    .venv/bin/python -m benchmarks.bench_recon --cos 500000         # quick

Writes `benchmarks/results/recon.json` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._machine import wait_idle  # noqa: E402

DATA = ROOT / "benchmarks" / ".data" / "recon"
RESULTS = ROOT / "benchmarks" / "results" / "recon.json"
DAY = date(2026, 6, 10)
GIB = 1 << 30
TARGETS = {"vs_floor": 2.0, "peak_rss_bytes": 8 * GIB}
CHUNK = 1_000_000
_FLOOR = """
CREATE TEMP TABLE pairs AS
SELECT co.falcon_operation_id AS co_id, ro.falcon_operation_id AS ro_id, co.amount_minor AS co_amount,
       ro.amount_minor AS ro_amount
FROM (SELECT * FROM lake_balance_operations WHERE source = 'CO') co
FULL OUTER JOIN (SELECT * FROM lake_balance_operations WHERE source = 'RO') ro
  ON co.falcon_operation_id = ro.falcon_operation_id AND co.merchant_id = ro.merchant_id
 AND co.currency = ro.currency
"""


def _workspace(home: str):
    from ops_pipeline.settings import Settings
    from ops_pipeline.workspace import Workspace

    return Workspace(Settings.from_env({"OPS_HOME": home, "OPS_TIMEZONE": "UTC"}))


def _operations(first: int, n: int, day_offset: int, source: str, tag: str):
    """`n` log rows of operations `first ..` on D + `day_offset` (before the RO variations)."""
    import polars as pl

    i = pl.int_range(first, first + n, eager=True)
    return pl.DataFrame({"i": i}).select(
        uuid=pl.format("{}-{}-{}", pl.lit(tag), pl.lit(source), "i"),
        external_reference=pl.lit(None, pl.String),
        amount_minor=(pl.col("i") * 7919 % 500_000 + 100).cast(pl.Int64),
        currency=pl.when(pl.col("i") % 5 == 0).then(pl.lit("USD")).otherwise(pl.lit("EUR")),
        type=pl.lit("capture"),
        falcon_operation_id=pl.format("op-{}", (pl.col("i") + 10**11).cast(pl.String)),
        source=pl.lit(source),
        operation_date=(pl.lit(datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC))
                        + pl.duration(days=day_offset, seconds=pl.col("i") * 37 % 86_400)),
        recorded_at=pl.lit(datetime(2026, 6, 20, tzinfo=UTC)),
        local_merchant_id=pl.lit(None, pl.String), shop_id=pl.lit(None, pl.String),
        balance_shop_id=pl.lit(None, pl.String), psp_id=pl.format("psp{}", pl.col("i") % 6),
        merchant_id=pl.format("M{}", (pl.col("i") % 3000).cast(pl.String)), op_key=pl.col("i").cast(pl.Int64),
        ingest_id=pl.lit(tag),
    )


def step_setup(home: str, cos: int) -> dict:
    """The workspace and its log (module docstring), appended in chunks of a million rows."""
    import polars as pl

    from ops_pipeline.lake.tables import BALANCE_OPERATIONS

    ws = _workspace(home)
    ws.init()
    spec = BALANCE_OPERATIONS
    rows = 0
    for first in range(0, cos, CHUNK):
        n = min(CHUNK, cos - first)
        co = _operations(first, n, 0, "CO", "bench")
        k = pl.col("op_key") % 1000
        ro = (_operations(first, n, 0, "RO", "bench").filter(k >= 5)  # 0.5% without an RO
              .with_columns(amount_minor=pl.when(k < 10).then(pl.col("amount_minor") + 1)
                            .otherwise(pl.col("amount_minor")),  # 0.5% with another amount
                            currency=pl.when(k.is_between(10, 10)).then(pl.lit("GBP"))
                            .otherwise(pl.col("currency")),  # 0.1% with another currency
                            operation_date=pl.col("operation_date") + pl.duration(
                                days=pl.when(k >= 990).then(5).otherwise(pl.col("op_key") % 3))))
        for frame in (co, ro):
            ws.lake.append(spec.name, frame.to_arrow().cast(spec.schema))
            rows += len(frame)
    extra = [_operations(cos, cos // 100, 0, "RO", "lone")]  # ROs of D without a CO
    extra += [_operations(cos * first, cos // 10, offset, source, tag) for first, offset, tag in
              ((2, -1, "before"), (3, 4, "after")) for source in ("CO", "RO")]
    for frame in extra:
        ws.lake.append(spec.name, frame.to_arrow().cast(spec.schema))
        rows += len(frame)
    ws.close()
    return {"log_rows": rows}


def step_floor(home: str) -> dict:
    from ops_pipeline.lake.tables import BALANCE_OPERATIONS

    ws = _workspace(home)
    started = time.perf_counter()
    with ws.lake.connect(BALANCE_OPERATIONS.name) as con:
        con.execute(_FLOOR)
        pairs = con.execute("SELECT count(*) FROM pairs").fetchall()[0][0]
    return {"seconds": time.perf_counter() - started, "pairs": pairs}


def step_settlement(home: str, dry_run: bool) -> dict:
    from ops_pipeline.recon import settlement

    ws = _workspace(home)
    started = time.perf_counter()
    summary = settlement.run(ws, DAY, actor="bench", dry_run=dry_run)
    seconds = time.perf_counter() - started
    ws.close()
    return {"seconds": seconds, "counts": summary.counts, "rows": summary.frame.height}


STEPS = {"setup": step_setup, "floor": step_floor, "settlement": step_settlement}


def peak_rss_bytes() -> int:
    """VmHWM of this process: its peak RSS since exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _in_this_process(name: str, args: str) -> int:
    """Run step `name` here; print its result with this process's peak RSS as the last line."""
    print(json.dumps({**STEPS[name](**json.loads(args)), "peak_rss_bytes": peak_rss_bytes()}, default=str))
    return 0


def run_step(name: str, cfg: argparse.Namespace, **kwargs) -> dict:
    """Step `name` in a new process (after waiting for a quiet machine), with its peak RSS and wall time."""
    idle = wait_idle(cfg.idle_busy, cfg.idle_wait)
    started = time.perf_counter()
    command = [sys.executable, str(Path(__file__).resolve()), "--step", name, json.dumps(kwargs)]
    found = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=ROOT, check=True)
    result = json.loads(found.stdout.strip().splitlines()[-1])
    result["process"] = {"wall_s": round(time.perf_counter() - started, 2), **idle,
                         "load_average_1m": round(os.getloadavg()[0], 2)}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cos", type=int, default=5_000_000, help="COs of the business date")
    p.add_argument("--repeat", type=int, default=3, help="rounds of floor, dry, recorded (best of each)")
    p.add_argument("--idle-busy", type=float, default=0.5, help="start a step when other load is below this")
    p.add_argument("--idle-wait", type=float, default=120, help="longest wait for a quieter machine (s)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--step", nargs=2, metavar=("NAME", "ARGS"), help=argparse.SUPPRESS)
    cfg = p.parse_args(argv)
    if cfg.step:
        return _in_this_process(*cfg.step)
    started = datetime.now(UTC)
    home = DATA / f"cos-{cfg.cos}"
    shutil.rmtree(home, ignore_errors=True)
    setup = run_step("setup", cfg, home=str(home), cos=cfg.cos)
    runs: dict[str, list[dict]] = {"floor": [], "dry": [], "recorded": []}
    for _ in range(cfg.repeat):
        runs["floor"].append(run_step("floor", cfg, home=str(home)))
        runs["dry"].append(run_step("settlement", cfg, home=str(home), dry_run=True))
        runs["recorded"].append(run_step("settlement", cfg, home=str(home), dry_run=False))
    best = {k: min(r["seconds"] for r in v) for k, v in runs.items()}
    peak = max(r["peak_rss_bytes"] for v in runs.values() for r in v)
    loads = [r["process"]["load_average_1m"] for v in runs.values() for r in v]
    out = {"benchmark": "recon", "started_at": started.isoformat(), "business_date": DAY.isoformat(),
           "cos": cfg.cos, "log_rows": setup["log_rows"], "repeat": cfg.repeat,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "platform": platform.platform()},
           "best_seconds": {k: round(v, 2) for k, v in best.items()},
           "ratio_dry_vs_floor": round(best["dry"] / best["floor"], 2),
           "ratio_recorded_vs_floor": round(best["recorded"] / best["floor"], 2),
           "peak_rss_bytes": peak, "targets": TARGETS,
           "load_average_1m": {"min": min(loads), "max": max(loads)},
           "met": best["recorded"] <= TARGETS["vs_floor"] * best["floor"]
           and peak <= TARGETS["peak_rss_bytes"],
           "runs": runs}
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    shutil.rmtree(home, ignore_errors=True)
    print(f"{'step':<10}{'best s':>9}{'x floor':>9}{'peak RSS GiB':>14}")
    for k, v in runs.items():
        print(f"{k:<10}{best[k]:>9.2f}{best[k] / best['floor']:>9.2f}"
              f"{max(r['peak_rss_bytes'] for r in v) / GIB:>14.2f}")
    print(f"counts: {runs['recorded'][-1]['counts']}")
    print(f"load average (1 min) after the steps: {min(loads)} .. {max(loads)}")
    print(f"target: <= {TARGETS['vs_floor']}x the floor, <= 8 GiB: {'met' if out['met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
