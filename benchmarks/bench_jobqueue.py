"""Job-queue benchmarks of issue 3 ("Performance"), on the PostgreSQL server at 127.0.0.1:5432.

1. Throughput, side by side with pgqueuer's own benchmark (`tools/benchmark.py` from its sdist, drain
   strategy, 50k no-op jobs, its default 5 dequeue tasks x batches of 10), each queue in its own database
   on the same server: our 5 worker threads claim batches of 10 with `JobQueue.claim` and finish them
   with `JobQueue.complete`, with priorities, expiries, the full history and the archive. Rounds
   alternate which queue goes first; the ratio is of the median rates. Target: ratio >= 1.0.
2. 100k jobs enqueued in one `JobQueue.enqueue_many` call. Target: <= 5 s.
3. Claim latency (one worker claiming one job at a time, 10k jobs waiting) in a fresh queue and in one
   through which 1M jobs went (enqueued, claimed, completed and archived by the engine, with its
   `vacuum` run every 30 s, as housekeeping does), measured in alternation. Target: p50 and
   p99 within 20%.
4. `POST /api/job/create` at 200 requests/s (open loop, `_jobqueue_api.py` on `_api_load.py`) against
   `ops-pipeline api` on PostgreSQL. Target: p99 <= 50 ms.

Every measured step runs in its own process, after waiting (up to `--idle-wait` s) for a quiet machine,
and runs again (up to `--attempts`) when other processes took more than `--max-others` of the CPUs
meanwhile; it records its peak RSS, its CPU seconds, the PostgreSQL server's CPU seconds, the CPU others
used and the load average.

    .venv/bin/python -m benchmarks.bench_jobqueue                         # everything (~15 min)
    .venv/bin/python -m benchmarks.bench_jobqueue --only throughput --rounds 5
    .venv/bin/python -m benchmarks.bench_jobqueue --archive-jobs 100000 --api-duration 10   # quick

Writes `benchmarks/results/jobqueue.json` and prints a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import _jobqueue_pg as pgq  # noqa: E402
from benchmarks._machine import busy_jiffies, wait_idle  # noqa: E402
from benchmarks.bench_balance_api import free_port, percentile, proc_stats, process_tree, start_server  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "jobqueue.json"
DATA = ROOT / "benchmarks" / ".data" / "jobqueue"
TARGETS = {"throughput_ratio": 1.0, "enqueue_100k_seconds": 5.0, "claim_latency_drift": 0.20,
           "api_p99_ms": 50.0}
STEPS = ("throughput", "enqueue", "latency", "api")


# -- measuring -----------------------------------------------------------------------------------------

def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process, those already exited included (the postmaster's children)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue
        name, fields = raw[raw.index("(") + 1 : raw.rindex(")")], raw[raw.rindex(")") + 2 :].split()
        if name != "postgres":
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if fields[1] == "1" or Path(f"/proc/{fields[1]}/comm").read_text().strip() != "postgres":
            total += int(fields[13]) + int(fields[14])  # the postmaster: cutime, cstime of reaped backends
    return total / tick


def vm_hwm_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))


def measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, dict]:
    """Run `cmd` to the end; its stdout and what it cost: wall, own CPU and peak RSS, the server's CPU."""
    load = os.getloadavg()
    pg0, (b0, t0) = postgres_cpu(), busy_jiffies()
    peak_kib = 0
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, env={**os.environ, **(env or {})}, cwd=ROOT)
        while True:  # getrusage's peak would count this parent's memory (copied at fork): poll VmHWM
            with contextlib.suppress(FileNotFoundError, StopIteration):
                peak_kib = max(peak_kib, vm_hwm_kib(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.05)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    b1, t1 = busy_jiffies()
    own, server = usage.ru_utime + usage.ru_stime, postgres_cpu() - pg0
    machine = (b1 - b0) / os.sysconf("SC_CLK_TCK")
    return text, {
        "wall_s": round(wall, 3),
        "process_cpu_s": round(own, 2),
        "process_peak_rss_mib": round(peak_kib / 1024, 1),  # sampled every 50 ms
        "postgres_cpu_s": round(server, 2),
        "machine_cpu_s": round(machine, 2),  # everything, all CPUs
        "machine_busy": round((b1 - b0) / max(1, t1 - t0), 2),  # fraction of all CPUs
        "others_busy": round(max(0.0, machine - own - server) / (wall * (os.cpu_count() or 1)), 3),
        "loadavg_before": [round(x, 2) for x in load],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def schema_url(args, schema: str) -> str:
    return (f"postgresql+psycopg2://{args.pg_user}@{args.pg_host}:{args.pg_port}/{args.ops_db}"
            f"?options=-csearch_path%3D{schema}")


def step(args, name: str, *extra: str, schema: str | None = None) -> dict:
    url = schema_url(args, schema or args.schema)
    text, cost = measured([sys.executable, "-m", "benchmarks._jobqueue_steps", name, "--url", url, *extra])
    return {**json.loads(text.strip().splitlines()[-1]), "cost": cost}


def quietly(args, run) -> dict:
    """`run()` on an idle machine; again (up to `--attempts` times) if other processes took more than
    `--max-others` of the CPUs meanwhile. The result records the wait and the attempts."""
    attempts = 0
    while True:
        idle = wait_idle(args.max_busy, args.idle_wait)
        result, attempts = run(), attempts + 1
        if result["cost"]["others_busy"] <= args.max_others or attempts == args.attempts:
            return result | {"idle": idle, "attempts": attempts}


# -- the benchmarks ------------------------------------------------------------------------------------

def throughput(args) -> dict:
    """Rounds of pgqueuer's drain benchmark and ours, alternating which goes first."""
    script = pgq.tools_benchmark(args.pgqueuer_sdist)
    env = pgq.libpq_env(args.pg_host, args.pg_port, args.pg_user, args.pgqueuer_db)
    pgq.fresh_database(args.pg_host, args.pg_port, args.pg_user, args.pgqueuer_db)
    pgq.install(env)
    output = DATA / "pgqueuer-result.json"
    command = pgq.drain_command(script, args.jobs, args.workers, args.batch, output)

    def ours() -> dict:
        step(args, "reset")  # like pgqueuer's setup: an empty queue (not measured: no migrations)
        result = step(args, "drain", "--jobs", str(args.jobs), "--workers", str(args.workers),
                      "--batch", str(args.batch))
        if not result["check"]["ok"]:
            raise SystemExit(f"our drain left the queue wrong: {result['check']}")
        return result

    def theirs() -> dict:
        _, cost = measured(command, env)
        raw = pgq.read_result(output)
        return {"jobs": raw["steps"], "rate": round(raw["rate"], 1), "elapsed": raw["elapsed"], "cost": cost}

    rounds = []
    for r in range(args.rounds):
        one = {}
        for who in (("pgqueuer", "ours") if r % 2 == 0 else ("ours", "pgqueuer")):
            one[who] = result = quietly(args, ours if who == "ours" else theirs)
            load = result["cost"]["loadavg_before"][0]
            print(f"  round {r + 1} {who}: {result['rate']} jobs/s (load {load})", flush=True)
        one["ratio"] = round(one["ours"]["rate"] / one["pgqueuer"]["rate"], 3)
        rounds.append(one)
    rate = {who: statistics.median(x[who]["rate"] for x in rounds) for who in ("ours", "pgqueuer")}

    def per_job(who: str, key: str) -> float:
        return round(statistics.median(x[who]["cost"][key] / x[who]["jobs"] * 1e6 for x in rounds), 1)

    return {
        "jobs": args.jobs, "workers": args.workers, "batch": args.batch, "rounds": rounds,
        "pgqueuer_command": " ".join(command), "pgqueuer_version": pgq.version("pgqueuer"),
        "median_rate": rate, "ratio": round(rate["ours"] / rate["pgqueuer"], 3),
        "cpu_us_per_job": {who: {"client": per_job(who, "process_cpu_s"),
                                 "postgres": per_job(who, "postgres_cpu_s")} for who in ("ours", "pgqueuer")},
        "meets_target": rate["ours"] / rate["pgqueuer"] >= TARGETS["throughput_ratio"],
    }


def enqueue(args) -> dict:
    result = quietly(args, lambda: step(args, "enqueue", "--fresh", "--jobs", str(args.enqueue_jobs)))
    return {**result, "meets_target": result["seconds"] <= TARGETS["enqueue_100k_seconds"]}


def latency(args) -> dict:
    """Claim latency in a fresh queue and in one that has archived `archive_jobs` jobs, measured in
    alternation (rounds), so both see the same machine."""
    common = ["--backlog", str(args.latency_backlog), "--claims", str(args.latency_claims)]
    fresh_schema, used_schema = f"{args.schema}_fresh", args.schema
    step(args, "reset", schema=fresh_schema)
    step(args, "reset", schema=used_schema)
    fill = step(args, "fill", "--jobs", str(args.archive_jobs), "--batch", "5000", schema=used_schema)
    pgq.checkpoint(args.pg_host, args.pg_port, args.pg_user)  # the fill's writes flushed before measuring
    rounds = []
    for r in range(args.latency_rounds):
        one = {}
        for which in (("fresh", "after") if r % 2 == 0 else ("after", "fresh")):
            schema = fresh_schema if which == "fresh" else used_schema
            one[which] = quietly(args, lambda schema=schema: step(args, "latency", *common, schema=schema))
        rounds.append(one)
    medians = {which: {q: round(statistics.median(x[which]["claim_ms"][q] for x in rounds), 3)
                       for q in ("p50", "p90", "p99")} for which in ("fresh", "after")}
    drift = {q: round(medians["after"][q] / medians["fresh"][q] - 1, 3) for q in ("p50", "p99")}
    return {"fill": fill, "rounds": rounds, "median_claim_ms": medians, "drift": drift,
            "meets_target": all(abs(d) <= TARGETS["claim_latency_drift"] for d in drift.values())}


def api(args) -> dict:
    from ops_pipeline.auth import mint_token
    from ops_pipeline.settings import Settings
    from ops_pipeline.workspace import Workspace

    url = schema_url(args, f"{args.schema}_api")
    step(args, "reset", schema=f"{args.schema}_api")
    settings = Settings.from_env({"OPS_HOME": str(DATA / "api"), "OPS_DATABASE_URL": url})
    ws = Workspace(settings)
    ws.init()
    ws.close()
    token = mint_token(settings, "ops", "bench-ops", ttl_seconds=86400)
    idle = wait_idle(args.max_busy, args.idle_wait)
    port = free_port()
    server = start_server(settings, port, args.api_workers)
    try:
        pids = process_tree(server.pid)
        cpu0 = proc_stats(pids)["cpu_seconds"]
        cmd = [sys.executable, str(ROOT / "benchmarks" / "_jobqueue_api.py"), "--port", str(port), "--rate",
               str(args.api_rate), "--duration", str(args.api_duration), "--token", token]
        text, cost = measured(cmd)
        stats = proc_stats(process_tree(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = json.loads(text)
    lat = result.pop("latencies_ms")
    ok = result["statuses"].get("201", 0) + result["statuses"].get("200", 0)
    errors = result["completed"] - ok + sum(result["errors"].values())
    requests = (args.api_duration + 3) * args.api_rate  # the 3 s warm-up included
    p99 = percentile(lat, 0.99)
    return {
        "rate": args.api_rate, "duration_s": args.api_duration, "workers": args.api_workers,
        "requests": result["requests"], "statuses": result["statuses"], "errors": errors,
        "achieved_rate": round(result["send_rate"], 1),
        "latency_ms": {name: round(percentile(lat, q), 2) for name, q in
                       (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999), ("max", 1.0))},
        "server_peak_rss_mib": round(sum(stats["peak_rss_mib"].values()), 1),
        "server_cpu_ms_per_request": round((stats["cpu_seconds"] - cpu0) * 1000 / requests, 2),
        "postgres_cpu_ms_per_request": round(cost["postgres_cpu_s"] * 1000 / requests, 2),
        "generator": cost, "idle": idle,
        "meets_target": errors == 0 and p99 <= TARGETS["api_p99_ms"],
    }


# -- main ----------------------------------------------------------------------------------------------

def summary(results: dict) -> list[str]:
    lines = []
    if t := results.get("throughput"):
        rates = t["median_rate"]
        lines.append(f"throughput ({t['jobs']} no-op jobs, {t['workers']} workers x batch {t['batch']}, "
                     f"median of {len(t['rounds'])} rounds): ours {rates['ours']} jobs/s, pgqueuer "
                     f"{rates['pgqueuer']} jobs/s, ratio {t['ratio']} (per round "
                     f"{[r['ratio'] for r in t['rounds']]}) -> {t['meets_target']}")
    if e := results.get("enqueue"):
        lines.append(f"enqueue_many of {e['jobs']} jobs: {e['seconds']} s ({e['rate']} jobs/s), peak RSS "
                     f"{e['peak_rss_mib']} MiB -> {e['meets_target']}")
    if la := results.get("latency"):
        f, a = la["median_claim_ms"]["fresh"], la["median_claim_ms"]["after"]
        lines.append(f"claim latency (median of rounds) fresh: p50 {f['p50']} ms p99 {f['p99']} ms; "
                     f"after {la['fill']['archived']} archived: p50 {a['p50']} ms p99 {a['p99']} ms; "
                     f"drift {la['drift']} -> {la['meets_target']}")
    if a := results.get("api"):
        lat = a["latency_ms"]
        lines.append(f"POST /api/job/create at {a['achieved_rate']}/s for {a['duration_s']} s: p50 "
                     f"{lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms, errors {a['errors']}, "
                     f"server peak RSS {a['server_peak_rss_mib']} MiB -> {a['meets_target']}")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=STEPS, default=list(STEPS))
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--pg-port", type=int, default=5432)
    p.add_argument("--pg-user", default="postgres")
    p.add_argument("--ops-db", default="bench_ops", help="database of our queue (schema --schema in it)")
    p.add_argument("--schema", default="bench_jobqueue")
    p.add_argument("--pgqueuer-db", default="bench_pgqueuer", help="database of pgqueuer's benchmark")
    p.add_argument("--pgqueuer-sdist", type=Path, help="unpacked pgqueuer sdist (default: pip download)")
    p.add_argument("--jobs", type=int, default=50_000)
    p.add_argument("--workers", type=int, default=5, help="pgqueuer's dequeue tasks and our worker threads")
    p.add_argument("--batch", type=int, default=10, help="pgqueuer's dequeue batch size and our claim limit")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--enqueue-jobs", type=int, default=100_000)
    p.add_argument("--archive-jobs", type=int, default=1_000_000)
    p.add_argument("--latency-backlog", type=int, default=10_000)
    p.add_argument("--latency-claims", type=int, default=5000)
    p.add_argument("--latency-rounds", type=int, default=5)
    p.add_argument("--api-rate", type=float, default=200)
    p.add_argument("--api-duration", type=float, default=60)
    p.add_argument("--api-workers", type=int, default=1)
    p.add_argument("--max-busy", type=float, default=0.15, help="idle: busy fraction of all CPUs")
    p.add_argument("--idle-wait", type=float, default=600, help="longest wait for an idle machine, s")
    p.add_argument("--max-others", type=float, default=0.05,
                   help="a measurement during which other processes used more of the CPUs is repeated")
    p.add_argument("--attempts", type=int, default=3, help="most runs of one measurement")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    pgq.ensure_database(args.pg_host, args.pg_port, args.pg_user, args.ops_db)
    DATA.mkdir(parents=True, exist_ok=True)

    saved = json.loads(args.out.read_text()) if args.out.exists() else {}
    saved |= {"targets": TARGETS, "cpus": os.cpu_count(), "python": platform.python_version(),
              "postgres": pgq.server_version(args.pg_host, args.pg_port, args.pg_user)}
    results = saved.setdefault("results", {})
    for name in STEPS:
        if name in args.only:
            print(f"{name} ...", flush=True)
            results[name] = {**globals()[name](args), "at": datetime.now(UTC).isoformat(timespec="seconds")}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(saved, indent=2) + "\n")
    print("\n".join(summary(results)))
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()
