"""Ops console page latency on the benchmark world, on PostgreSQL (issue 10): every page <= 200 ms p99.

The world, built through the domain's own paths: 100,000 jobs archived (enqueued, claimed, completed or
failed in big batches, as `bench_jobqueue --fill` does), 100,000 tickets over 50 agents (`create_tickets`),
40,000 businesses with fund-out configurations and one slot paid to all of them through the bank simulator
(`bench_fundout.build_world` + `batch.run_slot`), so 40,000 payouts and their ledger entries.

Each page is requested `--requests` times one after another by a signed-in session (keep-alive, as a browser
does) from this process to `ops-pipeline api` (one worker); latency is from send to the last byte. The floor
from the same run: `GET /healthz` (no session, no query) and the REST API's `GET /api/job/queue`.

    flock /tmp/ops-bench.lock .venv/bin/python -m benchmarks.bench_console
    .venv/bin/python -m benchmarks.bench_console --jobs 5000 --tickets 5000 --businesses 2000 --requests 50

Writes `benchmarks/results/console.json` and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._jobqueue_steps import noop_jobs  # noqa: E402
from benchmarks._machine import wait_idle  # noqa: E402
from benchmarks.bench_balance_api import free_port, percentile, postgres_url, start_server, stop_server  # noqa: E402
from benchmarks.bench_fundout import SLOT, build_world, start_bank  # noqa: E402
from benchmarks.bench_tickets import team  # noqa: E402
from ops_pipeline.auth import mint_token  # noqa: E402
from ops_pipeline.console import sessions  # noqa: E402
from ops_pipeline.fundout import batch  # noqa: E402
from ops_pipeline.fundout.bank import Bank  # noqa: E402
from ops_pipeline.jobqueue.queue import JobQueue  # noqa: E402
from ops_pipeline.settings import Settings  # noqa: E402
from ops_pipeline.tickets import tickets as ticket_service  # noqa: E402
from ops_pipeline.workspace import Workspace  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "console.json"
HOME = ROOT / "benchmarks" / ".data" / "console"
TARGET_P99_MS = 200.0


def fill_jobs(ws: Workspace, n: int, chunk: int = 10_000) -> dict:
    """n jobs archived: one in 20 failed, the rest completed."""
    queue, started, failed = JobQueue(ws.engine), time.perf_counter(), 0
    for start in range(0, n, chunk):
        queue.enqueue_many(noop_jobs(min(chunk, n - start), start))
        while claimed := queue.claim("bench-filler", limit=1000):
            ids = [j.id for j in claimed]
            bad = ids[::20]
            for job_id in bad:
                queue.fail(job_id, "bench-filler", "bench: a failure for the failed list")
            failed += len(bad)
            queue.complete([i for i in ids if i not in set(bad)], "bench-filler")
    return {"jobs": n, "failed": failed, "seconds": round(time.perf_counter() - started, 1)}


def fill_tickets(ws: Workspace, n: int, chunk: int = 5_000) -> dict:
    started = time.perf_counter()
    group_id, agent_ids = team(ws, "Console", 50)
    for start in range(0, n, chunk):
        items = [ticket_service.NewTicket(group_id=group_id, user_id=f"U{i}", priority=1 + i % 5)
                 for i in range(start, min(n, start + chunk))]
        ticket_service.create_tickets(ws, "bench", items)
    return {"tickets": n, "group_id": group_id, "agent": agent_ids[0],
            "seconds": round(time.perf_counter() - started, 1)}


def fill_fundout(ws: Workspace, n: int) -> dict:
    """n businesses paid in one slot through the bank simulator (`ws.settings.bank_url`)."""
    started = time.perf_counter()
    world = build_world(ws, n, seed=7)
    bank = Bank(ws.settings)
    try:
        report = batch.run_slot(ws, SLOT, "bench", bank=bank)
    finally:
        bank.close()
    return {**world, "batch_id": report.id, "paid": report.summary.paid,
            "seconds": round(time.perf_counter() - started, 1)}


def build(args: argparse.Namespace) -> Workspace:
    """The world on a fresh schema and lake; what it holds is saved in HOME/world.json for `--reuse`."""
    shutil.rmtree(HOME, ignore_errors=True)
    bank_port = free_port()
    bank_proc = start_bank(bank_port)
    url = postgres_url(args.pg, "bench_console")
    ws = Workspace(Settings.from_env({"OPS_HOME": str(HOME), "OPS_BANK_URL": f"http://127.0.0.1:{bank_port}",
                                      "OPS_DATABASE_URL": url}))
    ws.init()
    try:
        world = {"database_url": url, "jobs": fill_jobs(ws, args.jobs),
                 "tickets": fill_tickets(ws, args.tickets), "fundout": fill_fundout(ws, args.businesses)}
    finally:
        bank_proc.terminate()
    with ws.engine.begin() as conn:
        world["job_id"] = conn.exec_driver_sql("SELECT max(id) FROM jobs_archive").scalar_one()
        world["ticket_id"] = conn.exec_driver_sql("SELECT max(id) FROM tickets").scalar_one()
        conn.exec_driver_sql("ANALYZE")
    (HOME / "world.json").write_text(json.dumps(world))
    return ws


def pages(world: dict) -> dict[str, str]:
    """The pages measured: each area's list and one of its detail pages."""
    return {
        "overview": "/console/",
        "jobs": "/console/jobs",
        "jobs failed": "/console/jobs?state=Failed",
        "job": f"/console/jobs/{world['job_id']}",
        "job create form": "/console/jobs/new/manual",
        "tickets (group queue)": f"/console/tickets?group={world['tickets']['group_id']}",
        "ticket": f"/console/tickets/{world['ticket_id']}",
        "fund-out batches": "/console/fundout",
        "fund-out batch": f"/console/fundout/batches/{world['fundout']['batch_id']}",
        "fund-out business": "/console/fundout/businesses/BIZ000001",
        "ledger merchant": "/console/ledger/merchants/BIZ000001",
        "ledger quarantine": "/console/ledger/quarantine",
        "alerts": "/console/alerts",
    }


def measure(client: httpx.Client, path: str, n: int, headers: dict | None = None) -> dict:
    for _ in range(max(5, n // 20)):  # warm-up: connection, caches, first template compile
        client.get(path, headers=headers)
    times, statuses = [], set()
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        statuses.add(r.status_code)
    times.sort()
    return {"path": path, "requests": n, "status": sorted(statuses), "bytes": len(r.content),
            "p50_ms": round(percentile(times, 0.50), 2), "p95_ms": round(percentile(times, 0.95), 2),
            "p99_ms": round(percentile(times, 0.99), 2), "max_ms": round(times[-1], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--businesses", type=int, default=40_000)
    parser.add_argument("--requests", type=int, default=400, help="per page")
    parser.add_argument("--reuse", action="store_true", help="measure the world the last run built")
    parser.add_argument("--pg", default=os.environ.get("OPS_BENCH_PG_URL",
                                                       "postgresql+psycopg2://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()

    saved = HOME / "world.json"
    if args.reuse:
        world = json.loads(saved.read_text())
        settings = Settings.from_env({"OPS_HOME": str(HOME), "OPS_DATABASE_URL": world["database_url"]})
        ws = Workspace(settings)
    else:
        ws = build(args)
        settings, world = ws.settings, json.loads(saved.read_text())
    print(f"world: {json.dumps(world)}", file=sys.stderr)

    idle = wait_idle(max_busy=0.15, max_wait=120)
    port = free_port()
    server = start_server(settings, port, workers=1)
    results: dict[str, dict] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            token = sessions.issue_link(ws, "ops", "bench", actor="bench")
            assert client.post(f"/console/login/{token}").status_code == 303
            for name, path in pages(world).items():
                results[name] = measure(client, path, args.requests)
                print(f"{name:24} {results[name]}", file=sys.stderr)
            bearer = {"Authorization": f"Bearer {mint_token(settings, 'ops', 'bench')}"}
            floor = {"healthz": measure(client, "/healthz", args.requests),
                     "GET /api/job/queue": measure(client, "/api/job/queue", args.requests, bearer)}
    finally:
        stop_server(server)
        ws.close()
    worst = max(r["p99_ms"] for r in results.values())
    out = {
        "benchmark": "console pages", "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), **idle,
                    "load_before": os.getloadavg()[0]},
        "database": "postgresql", "world": world, "pages": results, "floor": floor,
        "target_p99_ms": TARGET_P99_MS, "worst_p99_ms": worst,
        "ok": worst <= TARGET_P99_MS and all(r["status"] == [200] for r in results.values()),
    }
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({"worst_p99_ms": worst, "ok": out["ok"]}))


if __name__ == "__main__":
    main()
