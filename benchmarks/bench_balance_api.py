"""Balance API under load: target p99 <= 20 ms at 500 requests/s for 60 s, load from a second process.

Builds a workspace (merchant context, confirmed and reconciled operations ingested in several commits,
payouts, holds) under `benchmarks/.data/balance_api/`, serves it with `ops-pipeline api` (uvicorn) on
127.0.0.1, and drives `GET /api/balances/{merchant_id}` over random merchants (ops and merchant-self
tokens, some with `?currency=`) from `benchmarks/_api_load.py`, an open-loop generator in its own process.
Every latency is recorded from the request's scheduled send time. Writes `benchmarks/results/balance_api.json`
(merged by configuration with earlier runs) and prints a summary.

    .venv/bin/python benchmarks/bench_balance_api.py                      # SQLite, 1 and 2 workers, 60 s
    .venv/bin/python benchmarks/bench_balance_api.py --duration 5 --workers 1
    .venv/bin/python benchmarks/bench_balance_api.py --db postgres
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import polars as pl
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ops_pipeline.auth import mint_token  # noqa: E402
from ops_pipeline.ledger import balances, entries, holds, ingest, merchants  # noqa: E402
from ops_pipeline.money import to_major  # noqa: E402
from ops_pipeline.settings import Settings  # noqa: E402
from ops_pipeline.workspace import Workspace  # noqa: E402

DATA = ROOT / "benchmarks" / ".data" / "balance_api"
RESULTS = ROOT / "benchmarks" / "results" / "balance_api.json"
TARGET = {"rate": 500, "duration_s": 60, "p99_ms": 20}
CURRENCIES = ("EUR", "USD", "GBP", "JPY", "BHD")
PG_SCHEMA = "bench_balance_api"


# -- the world ---------------------------------------------------------------------------------------

def build_world(home: Path, database_url: str | None, n_merchants: int, n_operations: int, files: int,
                seed: int) -> tuple[Settings, dict]:
    """A fresh workspace with a realistic balance cache; returns its settings and a description."""
    shutil.rmtree(home, ignore_errors=True)
    env = {"OPS_HOME": str(home), **({"OPS_DATABASE_URL": database_url} if database_url else {})}
    settings = Settings.from_env(env)
    ws = Workspace(settings)
    started = time.perf_counter()
    try:
        ws.init()
        rng = random.Random(seed)
        contexts = []  # (local merchant, currency, merchant id); every third merchant has two currencies
        for i in range(n_merchants):
            for k in range(2 if i % 3 == 0 else 1):
                contexts.append((f"lm{i}", CURRENCIES[(i + k) % len(CURRENCIES)], f"M{i:04d}"))
        context_file = home / "merchants.csv"
        pl.DataFrame({
            "psp_id": [f"psp{i % 3}" for i in range(len(contexts))],
            "local_merchant_id": [c[0] for c in contexts], "shop_id": "s1",
            "currency": [c[1] for c in contexts], "merchant_id": [c[2] for c in contexts],
            "balance_shop_id": "", "fee_percent": "2.5", "fee_fixed": "0",
        }).write_csv(context_file)
        merchants.load(ws, context_file)
        ops = []
        for j in range(n_operations):
            i = rng.randrange(len(contexts))
            lm, currency, _ = contexts[i]
            minor = rng.randint(100, 500_000)
            ops.append({
                "falcon_operation_id": f"op{j}", "external_reference": f"ref{j}",
                "type": "refund" if rng.random() < 0.08 else "capture",
                "amount": str(to_major(minor, currency)), "currency": currency,
                "operation_date": f"2026-10-{1 + j % 28:02d}T{j % 24:02d}:00:00Z",
                "psp_id": f"psp{i % 3}", "local_merchant_id": lm, "shop_id": "s1",
            })
        step = math.ceil(n_operations / files)
        for f in range(files):
            chunk = pl.DataFrame(ops[f * step : (f + 1) * step])
            chunk.write_parquet(home / f"co_{f}.parquet")
            ingest.ingest_file(ws, home / f"co_{f}.parquet", "confirmed")
            reconciled = chunk.head(int(len(chunk) * 0.8))  # late reconciliations: the rest not yet
            reconciled.write_parquet(home / f"ro_{f}.parquet")
            ingest.ingest_file(ws, home / f"ro_{f}.parquet", "reconciled")
        ids = sorted({c[2] for c in contexts})
        payouts, held = 0, 0
        for m in ids[::4]:
            for b in balances.get_balances(ws, m):
                if b.available_minor > 100:  # one commit per payout, as fund-out makes them
                    payout = entries.Entry("PAYOUT", f"payout-{m}-{b.currency}", m, b.currency,
                                           -(b.available_minor // 2), "payout")
                    entries.post_entries(ws, [payout], "bench")
                    payouts += 1
        for m in ids[1::5]:
            for b in balances.get_balances(ws, m):
                if b.available_minor > 100:
                    holds.place_hold(ws, m, b.currency, b.available_minor // 10, actor="bench")
                    held += 1
        balances.refresh_cache(ws)
        with ws.engine.connect() as conn:
            cache_rows = conn.execute(text("SELECT count(*) FROM balance_cache")).scalar_one()
        world = {
            "merchants": len(ids), "merchant_currencies": cache_rows, "operations": n_operations,
            "log_entries": balances.rebuild(ws).entries, "lake_version": ws.lake.latest_version(balances.LOG),
            "payouts": payouts, "holds": held, "build_seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        ws.close()
    return settings, world | {"merchant_ids": ids}


def request_mix(settings: Settings, merchant_ids: list[str], path: Path) -> Path:
    """[path, authorization] pairs: each merchant read by ops and by itself, with and without ?currency."""
    ops = "Bearer " + mint_token(settings, "ops", "bench-ops", ttl_seconds=86400)
    pairs = []
    for m in merchant_ids:
        own = "Bearer " + mint_token(settings, "merchant", m, ttl_seconds=86400)
        pairs += [[f"/api/balances/{m}", ops], [f"/api/balances/{m}", own]]
    eur = [m for m in merchant_ids if int(m[1:]) % len(CURRENCIES) == 0]  # EUR is their first currency
    pairs += [[f"/api/balances/{m}?currency=EUR", ops] for m in eur]
    path.write_text(json.dumps(pairs))
    return path


# -- the server --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(settings: Settings, port: int, workers: int) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("ops-pipeline")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from ops_pipeline.cli import main; main()"]
    env = {**os.environ, "OPS_HOME": str(settings.home), "OPS_DATABASE_URL": settings.database_url}
    args = ["api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen([*cmd, *args], env=env, cwd=ROOT, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with code {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                time.sleep(2 if workers > 1 else 0)  # let every worker finish starting
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("server did not answer /healthz within 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM (graceful), then SIGKILL to its whole process group if requests still hold it after 30 s."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def process_tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            todo += [int(c) for c in task.read_text().split()]
    return out


def proc_stats(pids: list[int]) -> dict:
    """Peak RSS (VmHWM) per process, MiB, and CPU seconds used, summed over the tree."""
    peaks, cpu = {}, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        peaks[p] = round(kib / 1024, 1)
        cpu += (int(stat[11]) + int(stat[12])) / tick  # utime + stime
    return {"peak_rss_mib": peaks, "cpu_seconds": cpu}


# -- one run -----------------------------------------------------------------------------------------

def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


def run_config(settings: Settings, requests: Path, workers: int, rate: float, duration: float,
               warmup: float) -> dict:
    port = free_port()
    server = start_server(settings, port, workers)
    try:
        pids = process_tree(server.pid)
        before = proc_stats(pids)["cpu_seconds"]
        load_before = os.getloadavg()
        generator = [sys.executable, str(ROOT / "benchmarks" / "_api_load.py"), "--port", str(port),
                     "--rate", str(rate), "--duration", str(duration), "--warmup", str(warmup),
                     "--requests", str(requests)]
        load = subprocess.run(generator, capture_output=True, text=True)
        if load.returncode:
            raise SystemExit(f"load generator failed:\n{load.stderr}")
        stats = proc_stats(process_tree(server.pid))
    finally:
        stop_server(server)
    result = json.loads(load.stdout)
    lat = result.pop("latencies_ms")
    ok = result["statuses"].get("200", 0)
    errors = result["completed"] - ok + sum(result["errors"].values())
    measured_cpu = stats["cpu_seconds"] - before
    return {
        "workers": workers, "rate": rate, "duration_s": duration, "warmup_s": warmup,
        "requests": result["requests"], "ok": ok, "errors": errors,
        "statuses": result["statuses"], "transport_errors": result["errors"],
        "achieved_rate": round(result["send_rate"], 1),
        "completion_rate": round(result["completion_rate"], 1),
        "latency_ms": {name: round(percentile(lat, q), 2) for name, q in
                       (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999), ("max", 1.0))}
        | {"mean": round(sum(lat) / len(lat), 2) if lat else None},
        "server_peak_rss_mib": stats["peak_rss_mib"], "server_peak_rss_total_mib": round(
            sum(stats["peak_rss_mib"].values()), 1),
        "server_cpu_cores_used": round(measured_cpu / (duration + warmup), 2),
        "server_cpu_ms_per_request": round(measured_cpu * 1000 / ((duration + warmup) * rate), 2),
        "generator_max_send_lag_ms": round(result["generator_max_send_lag_ms"], 2),
        "connections_opened": result["connections_opened"],
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "meets_target": bool(errors == 0 and percentile(lat, 0.99) <= TARGET["p99_ms"]
                             and result["send_rate"] >= 0.99 * rate),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# -- main ----------------------------------------------------------------------------------------------

def postgres_url(admin_url: str, schema: str = PG_SCHEMA) -> str:
    """A fresh schema for the benchmark in the given database; the URL pins search_path to it."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return f"{admin_url}?options=-csearch_path%3D{schema}"


def workspace_for(db: str, args: argparse.Namespace) -> tuple[Settings, dict]:
    """The benchmark world for `db`: built afresh, or the previous one with `--reuse`."""
    saved = DATA / db / "world.json"
    if args.reuse and saved.exists():
        url, world = json.loads(saved.read_text())
        return Settings.from_env({"OPS_HOME": str(DATA / db), "OPS_DATABASE_URL": url}), world
    url = postgres_url(args.pg_url) if db == "postgres" else None
    settings, world = build_world(DATA / db, url, args.merchants, args.operations, args.files, args.seed)
    saved.write_text(json.dumps([settings.database_url, world]))
    return settings, world


def summary(db: str, run: dict) -> str:
    lat = run["latency_ms"]
    return (f"[{db}, {run['workers']} worker(s)] {run['requests']} requests at {run['achieved_rate']}/s: "
            f"p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms, max {lat['max']} ms; "
            f"errors {run['errors']}; server peak RSS {run['server_peak_rss_total_mib']} MiB, "
            f"CPU {run['server_cpu_cores_used']} cores; target met: {run['meets_target']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=TARGET["duration_s"], help="seconds of measured load")
    p.add_argument("--rate", type=float, default=TARGET["rate"], help="requests per second (open loop)")
    p.add_argument("--warmup", type=float, default=3, help="seconds of unmeasured load first")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="uvicorn worker counts to try")
    p.add_argument("--db", choices=["sqlite", "postgres"], nargs="+", default=["sqlite"])
    p.add_argument("--pg-url", default=os.environ.get("OPS_TEST_PG_URL",
                                                      "postgresql+psycopg2://postgres@127.0.0.1:5432/test"))
    p.add_argument("--merchants", type=int, default=400)
    p.add_argument("--operations", type=int, default=200_000)
    p.add_argument("--files", type=int, default=10, help="ingest the operations in this many files (commits)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--reuse", action="store_true", help="reuse the workspace built by the previous run")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()

    saved = json.loads(args.out.read_text()) if args.out.exists() else {}
    saved |= {"target": TARGET, "cpus": os.cpu_count()}
    runs = saved.setdefault("runs", {})
    for db in args.db:
        settings, world = workspace_for(db, args)
        ids = world.pop("merchant_ids")
        print(f"[{db}] world: {world}", flush=True)
        requests = request_mix(settings, ids, DATA / f"requests-{db}-{uuid.uuid4().hex[:6]}.json")
        try:
            for workers in args.workers:
                run = run_config(settings, requests, workers, args.rate, args.duration, args.warmup)
                runs[f"{db}-{workers}w"] = {"db": db, **run, "world": world}
                print(summary(db, run), flush=True)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(saved, indent=2) + "\n")
        finally:
            requests.unlink()
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()
