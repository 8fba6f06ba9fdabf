"""Ledger benchmarks of issue 2 ("Performance"), measured in one run on this machine.

1. Ingest of a fresh 5M-operation Parquet file into an empty log and, the same file, into a log that
   already holds 50M entries: operations/s of both and their ratio; and the floor of issue 9, measured
   in the same run: reading that file with Polars and writing it once to a new Delta table with
   `write_deltalake` (ingest must stay within 3x of it).
2. `ledger rebuild` (`balances.rebuild`) of the 50M-entry log, entries/s, against DuckDB's raw
   `read_parquet` aggregation over the same Parquet files.
3. The same entries in a PostgreSQL table with an index, `SUM ... GROUP BY` (see `_ledger_pg.py`).

Every measured step runs in its own process; its peak memory is that process's peak RSS (VmHWM).
Before each step the run waits (up to `--idle-wait` s) until the machine is idle, and it records how
much CPU other processes used during the step (for the PostgreSQL step that includes the server's).
The 50M-entry log is built with our own `ingest_file` (confirmed files and, later, their
reconciliations) and cached under `benchmarks/.data/`; the PostgreSQL table is loaded once per build.

    .venv/bin/python -m benchmarks.bench_ledger                                       # full size
    .venv/bin/python -m benchmarks.bench_ledger --log-entries 2000000 --batch 500000  # quick
    .venv/bin/python -m benchmarks.bench_ledger --rebuild-data --skip-postgres

Writes `benchmarks/results/ledger.json` and prints a table.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import _ledger_data as data  # noqa: E402
from benchmarks import _ledger_pg as pg  # noqa: E402
from benchmarks._machine import busy_jiffies, wait_idle  # noqa: E402

DATA = ROOT / "benchmarks" / ".data"
RESULTS = ROOT / "benchmarks" / "results" / "ledger.json"
GENERATOR_VERSION = 1  # bump when the generated data changes
SEED = 20260101
GIB = 1 << 30
TARGETS = {"ingest_ops_per_s": 500_000, "ingest_slowdown": 1.5, "ingest_vs_floor": 3.0,
           "rebuild_entries_per_s": 20_000_000, "rebuild_vs_duckdb": 1.5, "postgres_vs_rebuild": 5.0,
           "peak_rss_bytes": 8 * GIB}


# -- steps: each runs in its own process -------------------------------------------------------------------

def _workspace(home: str):
    from ops_pipeline.settings import Settings
    from ops_pipeline.workspace import Workspace

    return Workspace(Settings.from_env({"OPS_HOME": home}))


def step_setup(home: str, merchants_file: str) -> dict:
    """A new workspace with the merchant context loaded."""
    from ops_pipeline.ledger import merchants

    ws = _workspace(home)
    ws.init()
    loaded = merchants.load(ws, Path(merchants_file), replace_all=True)
    ws.close()
    return {"merchant_context_rows": loaded.total}


def step_ingest(home: str, file: str, kind: str, profile: bool = False) -> dict:
    """`ingest_file` of one file; with `profile`, wall time of its stages (the raw rows overlap the rest;
    `append balance_operations` includes producing the entries, which stream from DuckDB)."""
    from ops_pipeline.lake.store import Lake
    from ops_pipeline.ledger import balances, ingest

    stages: dict[str, float] = {}
    if profile:
        for owner, name, label in [
            (ingest, "read_table", "read"), (ingest, "_stage_raw", "raw rows (background)"),
            (ingest, "validate_operations", "validate"), (ingest, "_classify", "classify"),
            (ingest, "_split", "split"), (Lake, "stage", "write {}"), (Lake, "commit", "commit {}"),
            (Lake, "append", "append {}"), (balances, "apply_to_cache", "cache"),
            (ingest, "_append_quarantine", "quarantine"), (ingest, "_resolve", "resolve"),
        ]:
            setattr(owner, name, _timed(getattr(owner, name), label, stages))
    ws = _workspace(home)
    started = time.perf_counter()
    r = ingest.ingest_file(ws, Path(file), kind)
    seconds = time.perf_counter() - started
    ws.close()
    out = {k: v for k, v in r.__dict__.items() if k != "ingest_id"}
    out.update(seconds=round(seconds, 3), ops_per_s=round(r.rows / seconds))
    if profile:
        out["stages_s"] = {k: round(v, 3) for k, v in stages.items()}
    return out


def step_floor(file: str, scratch: str) -> dict:
    """The floor of an ingest: read the file with Polars, write it once to a new Delta table."""
    import polars as pl
    from deltalake import write_deltalake

    shutil.rmtree(scratch, ignore_errors=True)
    started = time.perf_counter()
    df = pl.read_parquet(file)
    write_deltalake(scratch, df)
    seconds = time.perf_counter() - started
    shutil.rmtree(scratch, ignore_errors=True)
    return {"rows": len(df), "seconds": round(seconds, 3), "ops_per_s": round(len(df) / seconds)}


def _timed(fn, label: str, into: dict):
    """`fn`, adding its wall time to `into[label]` ({} in the label: the table name of a Lake method)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            key = label.format(getattr(args[1], "name", args[1])) if "{}" in label else label
            into[key] = into.get(key, 0.0) + time.perf_counter() - started
    return wrapper


def step_rebuild(home: str, repeat: int) -> dict:
    """`balances.rebuild` (replay the whole log, compare with the cache), `repeat` times."""
    from ops_pipeline.ledger import balances

    ws = _workspace(home)
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        r = balances.rebuild(ws)
        runs.append(time.perf_counter() - started)
    ws.close()
    return {"seconds": [round(t, 3) for t in runs], "median_s": round(statistics.median(runs), 3),
            "best_s": round(min(runs), 3), "entries": r.entries, "balances": r.balances,
            "differences": len(r.differences), "lake_version": r.version,
            "entries_per_s": round(r.entries / statistics.median(runs))}


def step_duckdb(home: str, repeat: int) -> dict:
    """DuckDB's raw aggregation over the log's Parquet files: the physical floor of a rebuild."""
    import duckdb

    from ops_pipeline.lake.tables import BALANCE_OPERATIONS

    ws = _workspace(home)
    files = ws.lake.open(BALANCE_OPERATIONS.name).file_uris()
    ws.close()
    listing = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    query = (f"SELECT merchant_id, currency, source, sum(amount_minor) AS amount_minor, count(*) AS entries "
             f"FROM read_parquet({listing}) GROUP BY merchant_id, currency, source")
    con = duckdb.connect()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        rows = con.sql(query).fetchall()
        runs.append(time.perf_counter() - started)
    entries = sum(r[4] for r in rows)
    return {"query": query.replace(listing, f"[...{len(files)} files...]"), "files": len(files),
            "seconds": [round(t, 3) for t in runs], "median_s": round(statistics.median(runs), 3),
            "best_s": round(min(runs), 3), "groups": len(rows), "entries": entries,
            "entries_per_s": round(entries / statistics.median(runs))}


def step_postgres(dsn: str, dbname: str, home: str, build_id: str, scratch: str, repeat: int) -> dict:
    """Load the log into PostgreSQL once per data build, then time `SUM ... GROUP BY` over it."""
    from ops_pipeline.lake.tables import BALANCE_OPERATIONS

    pg.ensure_database(dsn, dbname)
    out = {"database": dbname, "table": pg.TABLE, "query": " ".join(pg.QUERY.split())}
    if pg.loaded_build(dsn, dbname) != build_id:
        ws = _workspace(home)
        files = ws.lake.open(BALANCE_OPERATIONS.name).file_uris()
        ws.close()
        out["load"] = pg.load(dsn, dbname, files, build_id, Path(scratch))
    out.update(pg.measure(dsn, dbname, repeat))
    return out


STEPS = {"setup": step_setup, "ingest": step_ingest, "floor": step_floor, "rebuild": step_rebuild,
         "duckdb": step_duckdb, "postgres": step_postgres}


# -- running a step in its own process ------------------------------------------------------------------

def _peak_rss_bytes() -> int:
    """VmHWM of this process: its peak RSS since exec (ru_maxrss would include the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_step(name: str, cfg: argparse.Namespace | None = None, **kwargs) -> dict:
    """Run step `name` in a new process; add its peak RSS and the CPU other processes used meanwhile."""
    idle = wait_idle(cfg.idle_busy, cfg.idle_wait) if cfg is not None else {}
    load_before = os.getloadavg()[0]
    busy_before, _ = busy_jiffies()
    started = time.perf_counter()
    command = [sys.executable, str(Path(__file__).resolve()), "--step", name, json.dumps(kwargs)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's CPU time, not that of earlier ones
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    busy_after, _ = busy_jiffies()
    if proc.returncode != 0:
        raise SystemExit(f"step {name} failed with exit code {proc.returncode}")
    result = json.loads(output.strip().splitlines()[-1])
    tick = os.sysconf("SC_CLK_TCK")
    own_cpu = usage.ru_utime + usage.ru_stime
    result["process"] = {
        "wall_s": round(wall, 2), "cpu_s": round(own_cpu, 2), "peak_rss_bytes": result.pop("peak_rss_bytes"),
        "other_processes_cpu_s": round(max(0.0, (busy_after - busy_before) / tick - own_cpu), 2), **idle,
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    return result


# -- data --------------------------------------------------------------------------------------------------

def data_dir(cfg: argparse.Namespace) -> Path:
    return DATA / f"ledger-e{cfg.log_entries}-b{cfg.batch}-s{cfg.shops}"


def build_data(cfg: argparse.Namespace) -> dict:
    """The log of >= `log_entries` entries and the fresh benchmark file; reused while the parameters hold."""
    root = data_dir(cfg)
    manifest_file = root / "manifest.json"
    params = {"log_entries": cfg.log_entries, "batch": cfg.batch, "shops": cfg.shops,
              "generator": GENERATOR_VERSION, "seed": SEED}
    if manifest_file.exists() and not cfg.rebuild_data:
        manifest = json.loads(manifest_file.read_text())
        if manifest["params"] == params:
            return manifest
    shutil.rmtree(root, ignore_errors=True)
    (root / "build").mkdir(parents=True)
    started = time.perf_counter()
    context = data.merchant_context(cfg.shops, SEED)
    merchants_file = data.write_merchants(root / "merchants.csv", context)
    base = root / "base"
    run_step("setup", home=str(base), merchants_file=str(merchants_file))
    # confirmed files, and 97% of each again as reconciled one file later: CO1 CO2 RO1 CO3 RO2 ...; the last
    # file is cut to what the log still needs
    entries, operations, next_id, ratio = 0, 0, 1, 1.8
    pending: list = []  # confirmed operations whose reconciliation is still to come
    steps = []
    while entries < cfg.log_entries:
        needed = math.ceil((cfg.log_entries - entries) / ratio * 1.002) + 100
        if len(pending) >= 2 or (pending and needed < cfg.batch):
            ops, kind = pending.pop(0), "reconciled"
            ops = ops.head(min(len(ops) * 97 // 100, needed))
        else:
            kind = "confirmed"
            ops = data.operations(context, next_id, min(cfg.batch, needed), SEED + len(steps))
            next_id += len(ops)
            pending.append(ops)
        path = data.write_operations(root / "build" / f"{len(steps) + 1:03d}-{kind}.parquet", ops)
        r = run_step("ingest", home=str(base), file=str(path), kind=kind)
        path.unlink()
        entries += r["entries"]
        operations += r["rows"]
        ratio = entries / operations
        steps.append({"file": path.name, "kind": kind, "rows": r["rows"], "entries": r["entries"],
                      "seconds": r["seconds"], "peak_rss_bytes": r["process"]["peak_rss_bytes"]})
        print(f"  built {path.name}: {r['rows']:,} rows, {r['entries']:,} entries in {r['seconds']:.1f} s; "
              f"log {entries:,} entries", flush=True)
    fresh = data.write_operations(root / "fresh.parquet", data.operations(context, next_id, cfg.batch, SEED))
    manifest = {"params": params, "build_id": f"{datetime.now(UTC).isoformat()}-{entries}",
                "entries": entries, "operations_ingested": operations, "merchant_context_rows": len(context),
                "fresh_file": str(fresh), "fresh_rows": cfg.batch, "fresh_bytes": fresh.stat().st_size,
                "build_s": round(time.perf_counter() - started), "steps": steps}
    manifest_file.write_text(json.dumps(manifest, indent=2))
    return manifest


def copy_workspace(base: Path, to: Path) -> Path:
    """A writable copy of a workspace: the lake hard-linked (Delta never rewrites a file), the DB copied."""
    shutil.rmtree(to, ignore_errors=True)
    to.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(base / "lake"), str(to / "lake")], check=True)
    for item in base.iterdir():
        if item.name not in ("lake", "locks"):
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, to / item.name)
    return to


# -- the run -----------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--log-entries", type=int, default=50_000_000, help="entries in the big log")
    p.add_argument("--batch", type=int, default=5_000_000, help="operations per file")
    p.add_argument("--shops", type=int, default=2000, help="merchant context rows")
    p.add_argument("--rebuild-data", action="store_true", help="build the cached data again")
    p.add_argument("--repeat", type=int, default=3, help="timed runs of rebuild, DuckDB and PostgreSQL")
    p.add_argument("--skip-postgres", action="store_true")
    p.add_argument("--pg-dsn", default="host=127.0.0.1 port=5432 user=postgres")
    p.add_argument("--pg-db", default="ops_bench")
    p.add_argument("--idle-busy", type=float, default=0.15, help="start a step when other load is below this")
    p.add_argument("--idle-wait", type=float, default=300, help="longest wait for an idle machine (s)")
    p.add_argument("--no-profile", action="store_true", help="no per-stage timings of the ingests")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--step", nargs=2, metavar=("NAME", "ARGS"), help=argparse.SUPPRESS)
    cfg = p.parse_args(argv)
    if cfg.step:
        name, args = cfg.step
        result = STEPS[name](**json.loads(args))
        result["peak_rss_bytes"] = _peak_rss_bytes()
        print(json.dumps(result, default=str))
        return 0

    started = datetime.now(UTC)
    print(f"data: {data_dir(cfg)}", flush=True)
    manifest = build_data(cfg)
    root = data_dir(cfg)
    runs = root / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    fresh = manifest["fresh_file"]
    profile = not cfg.no_profile
    steps: dict[str, dict] = {}

    empty = runs / "empty"
    run_step("setup", home=str(empty), merchants_file=str(root / "merchants.csv"))
    print("floor: polars read + write_deltalake ...", flush=True)
    steps["floor"] = run_step("floor", cfg, file=fresh, scratch=str(runs / "floor"))
    print("ingest into an empty log ...", flush=True)
    steps["ingest_empty"] = run_step("ingest", cfg, home=str(empty), file=fresh, kind="confirmed",
                                     profile=profile)
    shutil.rmtree(empty)

    big = copy_workspace(root / "base", runs / "big")
    print("rebuild of the big log ...", flush=True)
    steps["rebuild"] = run_step("rebuild", cfg, home=str(big), repeat=cfg.repeat)
    print("DuckDB raw aggregation ...", flush=True)
    steps["duckdb_raw"] = run_step("duckdb", cfg, home=str(big), repeat=cfg.repeat)
    print("ingest into the big log ...", flush=True)
    steps["ingest_big"] = run_step("ingest", cfg, home=str(big), file=fresh, kind="confirmed",
                                   profile=profile)
    shutil.rmtree(big)
    if not cfg.skip_postgres:
        print("PostgreSQL (loads once per data build) ...", flush=True)
        steps["postgres"] = run_step("postgres", cfg, dsn=cfg.pg_dsn, dbname=cfg.pg_db,
                                     home=str(root / "base"), build_id=manifest["build_id"],
                                     scratch=str(root), repeat=cfg.repeat)
    shutil.rmtree(runs, ignore_errors=True)

    report = {
        "command": " ".join(["python -m benchmarks.bench_ledger", *(argv or sys.argv[1:])]),
        "started_at": started.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")},
        "versions": _versions(), "data": {k: v for k, v in manifest.items() if k != "steps"},
        "data_build_steps": manifest["steps"], "steps": steps, "checks": checks(steps, manifest),
    }
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"\nresults: {cfg.out}")
    return 0 if all(c["pass"] for c in report["checks"].values()) else 1


def _versions() -> dict:
    from importlib.metadata import version

    names = ("duckdb", "polars", "pyarrow", "deltalake", "psycopg2-binary")
    return {name: version(name) for name in names}


def checks(steps: dict, manifest: dict) -> dict:
    """Each target of the issue with the measured value."""
    empty, big, rebuild, raw = (steps[k] for k in ("ingest_empty", "ingest_big", "rebuild", "duckdb_raw"))
    out = {
        "ingest into the big log, operations/s": (big["ops_per_s"], ">=", TARGETS["ingest_ops_per_s"]),
        "ingest slowdown, big log / empty log": (round(big["seconds"] / empty["seconds"], 2), "<=",
                                                 TARGETS["ingest_slowdown"]),
        "ingest into the big log / floor": (round(big["seconds"] / steps["floor"]["seconds"], 2), "<=",
                                            TARGETS["ingest_vs_floor"]),
        "rebuild, entries/s": (rebuild["entries_per_s"], ">=", TARGETS["rebuild_entries_per_s"]),
        "rebuild / DuckDB raw aggregation": (round(rebuild["median_s"] / raw["median_s"], 2), "<=",
                                             TARGETS["rebuild_vs_duckdb"]),
    }
    if "postgres" in steps:
        out["PostgreSQL / rebuild"] = (round(steps["postgres"]["median_s"] / rebuild["median_s"], 1), ">=",
                                       TARGETS["postgres_vs_rebuild"])
    peak = max(s["process"]["peak_rss_bytes"] for s in steps.values())
    out["peak RSS of any step, GiB"] = (round(peak / GIB, 2), "<=", TARGETS["peak_rss_bytes"] / GIB)
    return {name: {"value": v, "target": f"{op} {t:,}", "pass": v >= t if op == ">=" else v <= t}
            for name, (v, op, t) in out.items()}


def print_report(report: dict) -> None:
    steps = report["steps"]
    info = report["data"]
    print(f"\nlog: {info['entries']:,} entries; fresh file: {info['fresh_rows']:,} operations")
    print(f"{'step':<16}{'median s':>10}{'best s':>9}{'rate':>18}{'peak RSS GiB':>14}{'other CPU s':>13}")
    rows = [
        (name, steps[name]["seconds"], None, f"{steps[name]['ops_per_s']:,} ops/s")
        for name in ("floor", "ingest_empty", "ingest_big")
    ] + [
        ("rebuild", steps["rebuild"]["median_s"], steps["rebuild"]["best_s"],
         f"{steps['rebuild']['entries_per_s'] / 1e6:.1f}M entries/s"),
        ("duckdb_raw", steps["duckdb_raw"]["median_s"], steps["duckdb_raw"]["best_s"],
         f"{steps['duckdb_raw']['entries_per_s'] / 1e6:.1f}M entries/s"),
    ]
    if "postgres" in steps:
        s = steps["postgres"]
        rate = f"{s['rows'] / s['median_s'] / 1e6:.1f}M entries/s"
        rows.append(("postgres", s["median_s"], s["best_s"], rate))
    for name, median, best, rate in rows:
        proc = steps[name]["process"]
        print(f"{name:<16}{median:>10.2f}{best if best is not None else float('nan'):>9.2f}{rate:>18}"
              f"{proc['peak_rss_bytes'] / GIB:>14.2f}{proc['other_processes_cpu_s']:>13.1f}")
    for label in ("ingest_empty", "ingest_big"):
        if "stages_s" in steps[label]:
            stages = steps[label]["stages_s"].items()
            print(f"  {label} stages (s): " + ", ".join(f"{k} {v:.2f}" for k, v in stages))
    print()
    for name, c in report["checks"].items():
        print(f"{'PASS' if c['pass'] else 'FAIL'}  {name}: {c['value']:,} (target {c['target']})")


if __name__ == "__main__":
    sys.exit(main())
