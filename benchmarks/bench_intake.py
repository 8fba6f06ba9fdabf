"""Live intake (issue 14): `POST /api/operations` against `ops-pipeline api` (uvicorn, `--workers` processes,
each a group committer), load from a second process.

0. The floor: both loads below against `_intake_floor` (FastAPI with the same models, no ledger behind).
1. Single operations at `--rate` requests/s (2,000) for `--duration` s (60), open loop (`_intake_load.py`),
   each POST followed on its connection by a balance read that must include it (its `lakeVersion` at least
   the POST's). Target: p99 <= 50 ms, no errors, every read includes its operation.
2. Afterwards, from the log: every acknowledged operation exactly once, none other; log files and commits
   added per minute (group commit: one file per commit).
3. Batches of 1,000 operations, `--batches` (200) of them over `--clients` (4) connections, closed loop:
   operations/s (target >= 200,000), again each exactly once in the log.
4. One compaction of what the run wrote (`ledger.compaction.compact`): files before and after, seconds.

    flock /tmp/ops-bench.lock .venv/bin/python -m benchmarks.bench_intake                  # embedded default
    .venv/bin/python -m benchmarks.bench_intake --db postgres                               # PostgreSQL
    .venv/bin/python -m benchmarks.bench_intake --duration 10 --rate 500 --batches 20       # quick

Writes `benchmarks/results/intake.json` (one key per database) and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from benchmarks import _server_metrics  # noqa: E402
from benchmarks._intake_load import BodyConnection, operation, post_request  # noqa: E402
from benchmarks._machine import wait_idle  # noqa: E402
from benchmarks.bench_balance_api import free_port, percentile, start_server, stop_server  # noqa: E402
from ops_pipeline.auth import mint_token  # noqa: E402
from ops_pipeline.lake.tables import BALANCE_OPERATIONS  # noqa: E402
from ops_pipeline.ledger import compaction, merchants  # noqa: E402
from ops_pipeline.settings import Settings  # noqa: E402
from ops_pipeline.workspace import Workspace  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "intake.json"
DATA = ROOT / "benchmarks" / ".data" / "intake"
LOG = BALANCE_OPERATIONS.name
TARGET_P99_MS, TARGET_BATCH_OPS = 50.0, 200_000
MERCHANT = {"id": "M1", "psp": "psp1", "local": "lm1", "shop": "s1", "currency": "EUR"}


def workspace(db: str, pg_url: str) -> Workspace:
    home = DATA / db
    shutil.rmtree(home, ignore_errors=True)
    env = {"OPS_HOME": str(home)}
    if db == "postgres":
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text('DROP SCHEMA IF EXISTS "bench_intake" CASCADE'))
            conn.execute(text('CREATE SCHEMA "bench_intake"'))
        admin.dispose()
        env["OPS_DATABASE_URL"] = f"{pg_url}?options=-csearch_path%3Dbench_intake"
    ws = Workspace(Settings.from_env(env))
    ws.init()
    context = home / "merchants.csv"
    context.write_text("psp_id,local_merchant_id,shop_id,currency,merchant_id,balance_shop_id,"
                       "fee_percent_micros,fee_fixed_minor\npsp1,lm1,s1,EUR,M1,,2.9,0.30\n")
    merchants.load(ws, context, actor="bench")
    return ws


def log_state(ws: Workspace) -> tuple[int, int]:
    """(latest version, files) of the log."""
    table = ws.lake.open(LOG)
    return table.version(), len(table.file_uris())


def counts(ws: Workspace, prefix: str) -> dict[str, int]:
    """How many times each operation id with `prefix` is in the log (its amount entry)."""
    con = duckdb.connect()
    rel = ws.lake.relation(con, LOG)
    found = con.sql(f"SELECT falcon_operation_id, count(*) FROM {rel} WHERE type = 'capture' "
                    "AND starts_with(falcon_operation_id, $p) GROUP BY ALL", params={"p": prefix})
    return dict(found.fetchall())


def exactly_once(ws: Workspace, prefix: str, acked: list[str]) -> dict:
    found = counts(ws, prefix)
    return {"acknowledged": len(acked), "missing": sum(1 for x in acked if x not in found),
            "duplicated": sum(1 for n in found.values() if n > 1),
            "in_log_not_acknowledged": len(set(found) - set(acked))}


def load(port: int, token: str, args, acked_file: Path) -> tuple[dict, list[float], list[float]]:
    """The single-operation load from a second process: its summary, POST and read latencies (ms)."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "_intake_load.py"), "--port", str(port),
           "--rate", str(args.rate), "--duration", str(args.duration), "--token", token,
           "--merchant", json.dumps(MERCHANT), "--prefix", "live", "--acked", str(acked_file)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"load generator failed:\n{run.stderr}")
    result = json.loads(run.stdout)
    posts, reads = result.pop("post_ms"), result.pop("read_ms")
    failed = sum(v for s, v in result["statuses"].items() if s != "200") + sum(result["errors"].values())
    return {**result, "errors": failed, "error_kinds": result["errors"]}, posts, reads


def latencies(posts: list[float], reads: list[float]) -> dict:
    return {"p50_ms": round(percentile(posts, 0.5), 2), "p99_ms": round(percentile(posts, 0.99), 2),
            "max_ms": round(percentile(posts, 1.0), 2),
            "read_p50_ms": round(percentile(reads, 0.5), 2), "read_p99_ms": round(percentile(reads, 0.99), 2),
            "reads": len(reads)}


def floor(args) -> dict:
    """The same two loads against `_intake_floor` (FastAPI with the same models, no ledger behind)."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "benchmarks._intake_floor:app", "--host", "127.0.0.1",
           "--port", str(port), "--no-access-log", "--log-level", "warning"]
    server = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    try:
        wait_for(port)
        result, posts, reads = load(port, "floor", args, DATA / "floor-acked.txt")
        batch, _ = asyncio.run(batches(port, "floor", args))
    finally:
        stop_server(server)
    return {"send_rate": result["send_rate"], "errors": result["errors"], **latencies(posts, reads),
            "batch_1000_operations_per_s": batch["operations_per_s"]}


def wait_for(port: int) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise SystemExit(f"the floor server did not listen on {port} within 30 s")


def single(ws: Workspace, port: int, token: str, args) -> dict:
    acked_file = DATA / "acked.txt"
    before, start, scraped = log_state(ws), time.perf_counter(), _server_metrics.scrape(port)
    result, posts, reads = load(port, token, args, acked_file)
    minutes = (time.perf_counter() - start) / 60
    diff = _server_metrics.delta(scraped, _server_metrics.scrape(port))
    after = log_state(ws)
    commits = _server_metrics.total(diff, "ops_ledger_ingest_duration_seconds_count")

    def mean(name: str) -> float:  # ms per observation of histogram `name` during the run
        count = _server_metrics.total(diff, f"{name}_count")
        return 1000 * _server_metrics.total(diff, f"{name}_sum") / max(1, count)

    return {
        **result, **latencies(posts, reads),
        "log_commits_per_minute": round((after[0] - before[0]) / minutes),
        "log_files_per_minute": round((after[1] - before[1]) / minutes),
        **exactly_once(ws, "live-", acked_file.read_text().split()),
        "server": {"group_commits": commits,
                   "mean_group_commit_ms": round(mean("ops_ledger_ingest_duration_seconds"), 1),
                   "mean_delta_commit_ms": round(mean("ops_lake_commit_duration_seconds"), 1)},
    }


async def batches(port: int, token: str, args) -> tuple[dict, list[str]]:
    host = f"127.0.0.1:{port}"
    bodies = [json.dumps({"operations": [operation(f"batch-{b}-{i}", "12.34", MERCHANT)
                                         for i in range(1000)]}).encode() for b in range(args.batches)]
    todo, acked, statuses = list(range(args.batches)), [], {}

    async def client() -> None:
        conn = await BodyConnection.open("127.0.0.1", port)
        while todo:
            b = todo.pop()
            status, answer = await conn.call(post_request(host, token, bodies[b]))
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                acked.extend(o["falconOperationId"] for o in json.loads(answer)["operations"])
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(args.clients)))
    seconds = time.perf_counter() - start
    return {"batches": args.batches, "clients": args.clients, "seconds": round(seconds, 2),
            "statuses": statuses, "operations_per_s": round(len(acked) / seconds)}, acked


def one_db(db: str, args) -> dict:
    ws = workspace(db, args.pg_url)
    port = free_port()
    quiet = wait_idle(args.max_busy, args.idle_wait)
    if quiet["busy_before"] > args.max_busy:
        raise SystemExit(f"the machine stayed busy ({quiet['busy_before']:.0%} of the CPUs over 3 s after "
                         f"{quiet['waited_s']} s): refusing to measure (--max-busy 1 measures anyway)")
    server = start_server(ws.settings, port, args.workers)
    token = mint_token(ws.settings, "internal", "bench", ttl_seconds=7200)
    try:
        loadavg = [round(x, 2) for x in os.getloadavg()]
        base = floor(args)
        live = single(ws, port, token, args)
        batch, acked = asyncio.run(batches(port, token, args))
        batch |= exactly_once(ws, "batch-", acked)
    finally:
        stop_server(server)
    files = log_state(ws)[1]
    start = time.perf_counter()
    [log] = [r for r in compaction.compact(ws, actor="bench") if r.table == LOG]
    compacted = {"files_before": files, "files_after": log.files_after,
                 "seconds": round(time.perf_counter() - start, 2)}
    ws.close()
    return {"loadavg_before": loadavg, **quiet, "floor": base, "single": live, "batch_1000": batch,
            "compaction": compacted,
            "meets_target": live["errors"] == 0 and live["p99_ms"] <= TARGET_P99_MS
            and live["missing"] == live["duplicated"] == live["reads_missing_their_operation"] == 0
            and batch["operations_per_s"] >= TARGET_BATCH_OPS}


def summary(db: str, r: dict) -> str:
    s, b, f = r["single"], r["batch_1000"], r["floor"]
    return (f"{db}: {s['send_rate']:.0f} req/s sent, p50 {s['p50_ms']} p99 {s['p99_ms']} "
            f"max {s['max_ms']} ms, "
            f"{s['errors']} errors, {s['missing']} missing, {s['duplicated']} duplicated, "
            f"{s['reads_missing_their_operation']} reads without their operation, "
            f"{s['log_files_per_minute']} log files/min; batches of 1,000: {b['operations_per_s']:,} ops/s; "
            f"compaction {r['compaction']['files_before']} -> {r['compaction']['files_after']} files in "
            f"{r['compaction']['seconds']} s -> {r['meets_target']}\n"
            f"  floor (FastAPI, same models, no ledger): p50 {f['p50_ms']} p99 {f['p99_ms']} ms, "
            f"{f['errors']} errors; batches of 1,000: {f['batch_1000_operations_per_s']:,} ops/s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", nargs="+", choices=("sqlite", "postgres"), default=["sqlite"])
    p.add_argument("--pg-url", default=os.environ.get("OPS_BENCH_PG_URL",
                                                      "postgresql+psycopg2://postgres@127.0.0.1:5432/test"))
    p.add_argument("--rate", type=float, default=2000)
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--workers", type=int, default=1, help="API processes (uvicorn workers), each a committer")
    p.add_argument("--max-busy", type=float, default=0.15, help="idle: busy fraction of all CPUs")
    p.add_argument("--idle-wait", type=float, default=600, help="longest wait for an idle machine, s")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()}
    for db in args.db:
        print(f"{db} ...", flush=True)
        results[db] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "rate": args.rate,
                       "workers": args.workers,
                       "duration_s": args.duration, **one_db(db, args)}
        print(summary(db, results[db]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()
