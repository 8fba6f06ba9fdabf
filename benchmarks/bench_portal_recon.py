"""Portal reconciliation speed (issue 13): 5M of our vouchers against a 5M-line portal export, within 2x of a
bare DuckDB full outer join of the same data in the same run; peak memory recorded.

Data, built straight in Parquet and Delta (`--vouchers` N, 100 principals, `OPS_TIMEZONE=UTC`): our side
(what `portal.ours` reads from `gc_vouchers`: principal, voucher id, face value, status, expiry) as one
Parquet file; the export as the Delta table `portal_vouchers` of a new workspace (2 files, one commit).
Discrepancies: 0.5% of our vouchers missing from the export, 0.5% export lines not ours, 0.3% another face
value, 1% another status, 0.2% another expiry, 0.1% of the lines listed twice (marked at intake, as
`portal_exports.repeats` does). Then, each in its own process
(peak RSS = its VmHWM), `--repeat` interleaved rounds (the best of each):
- floor: DuckDB over the same files, ours FULL OUTER JOIN the export on (principal, voucher id), the pairs
  with both face values materialised in a temporary table;
- dry: `portal.compare` (the one query the run makes: duplicates, join, kinds, reasons) to Polars;
- recorded: the same and `service.record` (the rows appended to `recon_results`, 4 Parquet files in parallel).

    .venv/bin/python -m benchmarks.bench_portal_recon                     # full size
    .venv/bin/python -m benchmarks.bench_portal_recon --vouchers 500000   # quick

Writes `benchmarks/results/portal_recon.json` and prints a table.
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
from benchmarks.bench_recon import peak_rss_bytes  # noqa: E402

DATA = ROOT / "benchmarks" / ".data" / "portal_recon"
RESULTS = ROOT / "benchmarks" / "results" / "portal_recon.json"
DAY = date(2026, 12, 5)
GIB = 1 << 30
TARGET_VS_FLOOR = 2.0
_FLOOR = """
CREATE TEMP TABLE pairs AS
SELECT o.voucher_id AS ours_id, t.voucher_id AS portal_id, o.face_value_minor AS ours_face,
       t.face_value_minor AS portal_face
FROM ours o FULL OUTER JOIN theirs t ON o.principal_id = t.principal_id AND o.voucher_id = t.voucher_id
"""


def _workspace(home: str):
    from ops_pipeline.settings import Settings
    from ops_pipeline.workspace import Workspace

    return Workspace(Settings.from_env({"OPS_HOME": home, "OPS_TIMEZONE": "UTC"}))


def step_setup(home: str, vouchers: int) -> dict:
    """Our vouchers (Parquet) and the export (Delta), as the module docstring says."""
    import polars as pl

    from ops_pipeline.giftcards.portal_exports import repeats
    from ops_pipeline.lake.tables import PORTAL_VOUCHERS

    ws = _workspace(home)
    ws.init()
    k = pl.col("i") % 1000
    statuses = pl.lit(["distributed", "redeemed", "issued", "expired"]).list.get(pl.col("i") % 4)
    ours = pl.DataFrame({"i": pl.int_range(0, vouchers, eager=True)}).select(
        "i", principal_id=pl.format("P-{}", (pl.col("i") % 100).cast(pl.String).str.zfill(3)),
        voucher_id=pl.format("GV-{}", (pl.col("i") * 2654435761 + 12345).cast(pl.String).str.zfill(20)),
        row_number=pl.col("i").cast(pl.Int64), face_value_minor=(pl.col("i") % 5 + 1) * 50_000,
        currency=pl.lit("INR"), status=statuses,
        expiry_date=pl.lit(date(2027, 12, 31)) - pl.duration(days=pl.col("i") % 365))
    extra = vouchers // 200  # export lines not ours
    theirs = pl.concat([
        ours.filter(k >= 5),  # 0.5% missing from the export
        ours.filter(k == 999).with_columns(row_number=pl.col("row_number") + 10 * vouchers),  # 0.1% twice
        ours.head(extra).with_columns(voucher_id=pl.format("GX-{}", "i"),
                                      row_number=pl.col("i") + 20 * vouchers),
    ]).with_columns(
        face_value_minor=pl.when(k.is_between(5, 7)).then(pl.col("face_value_minor") + 100)
        .otherwise("face_value_minor"),  # 0.3%
        status=pl.when(k.is_between(10, 19)).then(pl.lit("cancelled")).otherwise("status"),  # 1%
        expiry_date=pl.when(k.is_between(20, 21)).then(pl.col("expiry_date") + pl.duration(days=30))
        .otherwise("expiry_date"),  # 0.2%
    ).sample(fraction=1.0, shuffle=True, seed=7)
    ours.drop("i", "row_number").write_parquet(Path(home) / "ours.parquet", compression="lz4")
    export = theirs.drop("i").with_columns(**repeats(theirs)).with_columns(
        export_id=pl.lit("bench"), export_date=pl.lit(DAY),
        redeemed_at=pl.lit(None, pl.Datetime("us", "UTC")), file_name=pl.lit("bench.csv"),
        loaded_at=pl.lit(datetime(2026, 12, 6, tzinfo=UTC)))
    half = export.height // 2
    halves = [export.head(half), export.tail(export.height - half)]
    ws.lake.commit(ws.lake.stage(PORTAL_VOUCHERS.name, halves))
    ws.close()
    return {"ours": ours.height, "export_lines": export.height}


def _connection(ws, home: str):
    from ops_pipeline.lake.tables import PORTAL_VOUCHERS
    from ops_pipeline.recon import portal

    context = ws.lake.connect(PORTAL_VOUCHERS.name)
    con = context.__enter__()
    con.execute(f"CREATE VIEW ours AS SELECT * FROM read_parquet('{Path(home) / 'ours.parquet'}')")
    portal.register_theirs(con, DAY)
    return context, con


def step_floor(home: str) -> dict:
    ws = _workspace(home)
    context, con = _connection(ws, home)
    started = time.perf_counter()
    con.execute(_FLOOR)
    pairs = con.execute("SELECT count(*) FROM pairs").fetchall()[0][0]
    seconds = time.perf_counter() - started
    context.__exit__(None, None, None)
    return {"seconds": seconds, "pairs": pairs}


def step_portal(home: str, dry_run: bool) -> dict:
    from ops_pipeline.recon import portal, service

    ws = _workspace(home)
    context, con = _connection(ws, home)
    started = time.perf_counter()
    frame = portal.compare(con, DAY)
    summary = (service.RunSummary(portal.NAME, DAY, None, None, frame) if dry_run
               else service.record(ws, portal.PORTAL, DAY, frame, actor="bench"))
    seconds = time.perf_counter() - started
    context.__exit__(None, None, None)
    ws.close()
    return {"seconds": seconds, "counts": summary.counts, "rows": frame.height}


STEPS = {"setup": step_setup, "floor": step_floor, "portal": step_portal}


def run_step(name: str, cfg: argparse.Namespace, **kwargs) -> dict:
    """Step `name` in a new process (after waiting for a quiet machine), with its peak RSS."""
    idle = wait_idle(cfg.idle_busy, cfg.idle_wait)
    command = [sys.executable, str(Path(__file__).resolve()), "--step", name, json.dumps(kwargs)]
    found = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=ROOT, check=True)
    return {**json.loads(found.stdout.strip().splitlines()[-1]), **idle,
            "load_average_1m": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vouchers", type=int, default=5_000_000, help="our vouchers (the export about as many)")
    p.add_argument("--repeat", type=int, default=3, help="rounds of floor, dry, recorded (best of each)")
    p.add_argument("--idle-busy", type=float, default=0.5, help="start a step when other load is below this")
    p.add_argument("--idle-wait", type=float, default=60, help="longest wait for a quieter machine (s)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--step", nargs=2, metavar=("NAME", "ARGS"), help=argparse.SUPPRESS)
    cfg = p.parse_args(argv)
    if cfg.step:
        name, args = cfg.step
        result = STEPS[name](**json.loads(args))
        print(json.dumps({**result, "peak_rss_bytes": peak_rss_bytes()}, default=str))
        return 0
    started = datetime.now(UTC)
    home = DATA / f"vouchers-{cfg.vouchers}"
    shutil.rmtree(home, ignore_errors=True)
    setup = run_step("setup", cfg, home=str(home), vouchers=cfg.vouchers)
    runs: dict[str, list[dict]] = {"floor": [], "dry": [], "recorded": []}
    for _ in range(cfg.repeat):
        runs["floor"].append(run_step("floor", cfg, home=str(home)))
        runs["dry"].append(run_step("portal", cfg, home=str(home), dry_run=True))
        runs["recorded"].append(run_step("portal", cfg, home=str(home), dry_run=False))
    best = {k: min(r["seconds"] for r in v) for k, v in runs.items()}
    peak = {k: max(r["peak_rss_bytes"] for r in v) for k, v in runs.items()}
    loads = [r["load_average_1m"] for v in runs.values() for r in v]
    out = {"benchmark": "portal_recon", "started_at": started.isoformat(), **setup, "repeat": cfg.repeat,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "best_seconds": {k: round(v, 2) for k, v in best.items()},
           "ratio_dry_vs_floor": round(best["dry"] / best["floor"], 2),
           "ratio_recorded_vs_floor": round(best["recorded"] / best["floor"], 2),
           "peak_rss_bytes": peak, "target_vs_floor": TARGET_VS_FLOOR,
           "load_average_1m": {"min": min(loads), "max": max(loads)},
           "met": best["recorded"] <= TARGET_VS_FLOOR * best["floor"], "runs": runs}
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    shutil.rmtree(home, ignore_errors=True)
    print(f"{'step':<10}{'best s':>9}{'x floor':>9}{'peak RSS GiB':>14}")
    for k in runs:
        print(f"{k:<10}{best[k]:>9.2f}{best[k] / best['floor']:>9.2f}{peak[k] / GIB:>14.2f}")
    print(f"counts: {runs['recorded'][-1]['counts']}")
    print(f"load average (1 min): {min(loads)} .. {max(loads)}")
    print(f"target: recorded <= {TARGET_VS_FLOOR}x the floor: {'met' if out['met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
