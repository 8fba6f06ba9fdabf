"""Write-path latency tails (issue 15), on the PostgreSQL server at 127.0.0.1:5432.

Three endpoints, each at 200 requests/s for 60 s (open loop, `_api_load.run`: latency from each request's
scheduled send time), three consecutive runs each against one `ops-pipeline api` (1 worker):
1. `POST /api/job/create` (the job-queue benchmark's mix of types, priorities, expiries, idempotency keys);
2. `POST /api/tickets` into a group of 50 agents;
3. the fund-out config API: 40,000 merchants reading and changing their own configs (3 GET : 1 PUT).
Target: p99 <= 50 ms in every run.

Before each run the benchmark waits for a quiet machine (at most `--max-busy` of the CPUs over 3 s, up to
`--idle-wait` s) and refuses to go on when it does not get one; it records the load average. Around each run
it scrapes the server's `/metrics`: the run's difference says where the server's time went (latency per
phase, what slow requests waited on, event-loop lag, GC pauses, pool and lock waits).

    flock /tmp/ops-bench.lock .venv/bin/python -m benchmarks.bench_tails
    .venv/bin/python -m benchmarks.bench_tails --only jobs --runs 1 --duration 10      # quick

Writes `benchmarks/results/tails.json` and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from benchmarks import _jobqueue_api, _server_metrics  # noqa: E402
from benchmarks._api_load import run as load  # noqa: E402
from benchmarks._machine import wait_idle  # noqa: E402
from benchmarks.bench_balance_api import free_port, percentile, start_server, stop_server  # noqa: E402
from benchmarks.bench_fundout import build_world, config_requests  # noqa: E402
from benchmarks.bench_tickets import team  # noqa: E402
from benchmarks.bench_tickets import templates as ticket_templates  # noqa: E402
from ops_pipeline.auth import mint_token  # noqa: E402
from ops_pipeline.settings import Settings  # noqa: E402
from ops_pipeline.workspace import Workspace  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "tails.json"
DATA = ROOT / "benchmarks" / ".data" / "tails"
TARGET_P99_MS = 50.0
ENDPOINTS = ("jobs", "tickets", "fundout_config")


def workspace(args, name: str) -> Workspace:
    """A fresh schema `bench_tails_<name>` and workspace."""
    schema = f"bench_tails_{name}"
    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    home = DATA / name
    settings = Settings.from_env({"OPS_HOME": str(home), "OPS_DATABASE_URL":
                                  f"{args.pg_url}?options=-csearch_path%3D{schema}"})
    ws = Workspace(settings)
    ws.init()
    return ws


def requests_for(name: str, ws: Workspace, host: str, args) -> list[bytes]:
    token = mint_token(ws.settings, "ops", "bench", ttl_seconds=7200)
    if name == "jobs":
        return _jobqueue_api.templates(host, token, 400, args.seed)
    if name == "tickets":
        group_id, _ = team(ws, "Tails", 50)
        bodies = [{"groupId": group_id, "userId": f"U{i}", "priority": 1 + i % 5} for i in range(200)]
        return ticket_templates(host, token, [("POST", "/api/tickets", body) for body in bodies])
    build_world(ws, args.businesses, args.seed)
    return config_requests(ws.settings, args.businesses, args.seed)


def one_run(port: int, templates: list[bytes], args) -> dict:
    quiet = wait_idle(args.max_busy, args.idle_wait)
    if quiet["busy_before"] > args.max_busy:
        raise SystemExit(f"the machine stayed busy ({quiet['busy_before']:.0%} of the CPUs over 3 s after "
                         f"{quiet['waited_s']} s): refusing to measure")
    loadavg = os.getloadavg()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(load("127.0.0.1", port, args.rate, args.warmup, templates, 0, 10, args.seed + 1))  # not counted
    before = _server_metrics.scrape(port)
    result = runner(load("127.0.0.1", port, args.rate, args.duration, templates, 0, 10, args.seed))
    diff = _server_metrics.delta(before, _server_metrics.scrape(port))
    lat = result.pop("latencies_ms")
    served = sorted({(dict(k)["route"], dict(k)["method"]) for (n, k), v in diff.items()
                     if n == "ops_http_requests_total" and v > 0 and dict(k)["route"] != "/metrics"})
    failed = sum(v for s, v in result["statuses"].items() if not s.startswith("2"))
    errors = failed + sum(result["errors"].values())
    return {
        "loadavg_before": [round(x, 2) for x in loadavg], **quiet,
        "requests": result["requests"], "statuses": result["statuses"], "errors": errors,
        "achieved_rate": round(result["send_rate"], 1),
        "generator_max_send_lag_ms": round(result["generator_max_send_lag_ms"], 2),
        "p50_ms": round(percentile(lat, 0.5), 2), "p99_ms": round(percentile(lat, 0.99), 2),
        "max_ms": round(percentile(lat, 1.0), 2),
        "server": [_server_metrics.where_time_goes(diff, route, method) for route, method in served],
    }


def endpoint(name: str, args) -> dict:
    ws = workspace(args, name)
    port = free_port()
    templates = requests_for(name, ws, f"127.0.0.1:{port}", args)
    server = start_server(ws.settings, port, 1)
    try:
        runs = [one_run(port, templates, args) for _ in range(args.runs)]
    finally:
        stop_server(server)
        ws.close()
    return {"rate": args.rate, "duration_s": args.duration, "runs": runs,
            "meets_target": all(r["errors"] == 0 and r["p99_ms"] <= TARGET_P99_MS for r in runs)}


def summary(results: dict) -> list[str]:
    lines = []
    for name in ENDPOINTS:
        if r := results.get(name):
            figures = ", ".join(f"p99 {x['p99_ms']} ms (max {x['max_ms']})" for x in r["runs"])
            lines.append(f"{name}: {figures} -> {r['meets_target']}")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=ENDPOINTS, default=list(ENDPOINTS))
    p.add_argument("--pg-url", default=os.environ.get("OPS_BENCH_PG_URL",
                                                      "postgresql+psycopg2://postgres@127.0.0.1:5432/test"))
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--businesses", type=int, default=40_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-busy", type=float, default=0.15, help="idle: busy fraction of all CPUs")
    p.add_argument("--idle-wait", type=float, default=600, help="longest wait for an idle machine, s")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    results: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": {
        "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "target_p99_ms": TARGET_P99_MS}
    for name in args.only:
        print(f"{name} ...", flush=True)
        results[name] = endpoint(name, args)
        print("\n".join(summary({name: results[name]})), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(summary(results)))
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()
