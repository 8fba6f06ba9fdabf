"""Steps of the job-queue benchmark, each run in its own process by `bench_jobqueue.py`; each prints one JSON
object (with the process's own peak RSS and CPU seconds).

    python -m benchmarks._jobqueue_steps drain   --url URL --jobs 50000 --workers 5 --batch 10
    python -m benchmarks._jobqueue_steps enqueue --url URL --jobs 100000
    python -m benchmarks._jobqueue_steps latency --url URL --backlog 10000 --claims 3000
    python -m benchmarks._jobqueue_steps fill    --url URL --jobs 1000000
    python -m benchmarks._jobqueue_steps reset   --url URL

Every step works in the PostgreSQL schema the URL's search_path names, made afresh with `--fresh`. Jobs are
no-op jobs of type `bench_noop` with mixed priorities, half of them with an expiry an hour away, so claims
order by priority and check expiry; the queue keeps its full history (created, claimed, completed) and
archives every finished job, as in production.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from ops_pipeline.db import make_engine, upgrade  # noqa: E402
from ops_pipeline.db.schema import job_history, jobs, jobs_archive  # noqa: E402
from ops_pipeline.jobqueue.model import NewJob  # noqa: E402
from ops_pipeline.jobqueue.queue import JobQueue  # noqa: E402

PRIORITIES = ("High", "Medium", "Low")
NOOP = "bench_noop"


def schema_of(url: str) -> str:
    options = make_url(url).query.get("options", "")
    return options.split("search_path=", 1)[1]


def fresh_schema(url: str) -> None:
    """Drop and create the schema the URL points at, then create the operational tables in it."""
    schema = schema_of(url)
    admin = create_engine(make_url(url).difference_update_query(["options"]), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def noop_jobs(n: int, start: int = 0) -> list[NewJob]:
    expiry = datetime.now(UTC) + timedelta(hours=1)
    return [NewJob(type=NOOP, attributes={}, created_by="bench", created_by_kind="service",
                   priority=PRIORITIES[i % 3], expires_at=expiry if i % 2 else None)
            for i in range(start, start + n)]


def own_usage() -> dict:
    """This process's peak RSS (VmHWM: since its exec, unlike getrusage) and CPU seconds."""
    status = Path("/proc/self/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return {"peak_rss_mib": round(kib / 1024, 1), "cpu_seconds": round(time.process_time(), 2)}


def drain(queue: JobQueue, workers: int, batch: int) -> tuple[float, list[int]]:
    """`workers` threads claim `batch` jobs at a time and complete them until none is left.

    Returns the seconds it took and how many jobs each worker completed."""
    done = [0] * workers
    go = threading.Barrier(workers + 1)

    def work(i: int) -> None:
        name = f"bench-{i}"
        go.wait()
        while claimed := queue.claim(name, limit=batch):
            done[i] += len(queue.complete([j.id for j in claimed], name))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    go.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - started, done


def check_drained(engine, expected: int) -> dict:
    """Every job archived Completed, claimed exactly once, with its three history rows."""
    with engine.connect() as conn:
        live = conn.execute(select(func.count()).select_from(jobs)).scalar_one()
        by_state = select(jobs_archive.c.state, func.count()).group_by(jobs_archive.c.state)
        archived = dict(conn.execute(by_state).all())
        history = conn.execute(select(func.count()).select_from(job_history)).scalar_one()
        twice = conn.execute(text(
            "SELECT count(*) FROM (SELECT job_id FROM job_history WHERE reason = 'claimed' "
            "GROUP BY job_id HAVING count(*) > 1) t")).scalar_one()
    ok = live == 0 and archived == {"Completed": expected} and history == 3 * expected and twice == 0
    return {"live": live, "archived": archived, "history_rows": history, "claimed_twice": twice, "ok": ok}


def step_drain(args) -> dict:
    if args.fresh:
        fresh_schema(args.url)
    engine = make_engine(args.url)
    queue = JobQueue(engine)
    started = time.perf_counter()
    queue.enqueue_many(noop_jobs(args.jobs))
    enqueued = time.perf_counter() - started
    cpu = time.process_time()
    seconds, per_worker = drain(queue, args.workers, args.batch)
    cpu = time.process_time() - cpu
    checked = check_drained(engine, args.jobs)
    engine.dispose()
    return {"jobs": args.jobs, "workers": args.workers, "batch": args.batch,
            "enqueue_seconds": round(enqueued, 3),
            "seconds": round(seconds, 3), "rate": round(args.jobs / seconds, 1), "per_worker": per_worker,
            "drain_cpu_us_per_job": round(cpu / args.jobs * 1e6, 1),
            "check": checked}


def step_enqueue(args) -> dict:
    if args.fresh:
        fresh_schema(args.url)
    engine = make_engine(args.url)
    queue = JobQueue(engine)
    batch = noop_jobs(args.jobs)
    started = time.perf_counter()
    ids = queue.enqueue_many(batch)
    seconds = time.perf_counter() - started
    with engine.connect() as conn:
        live = conn.execute(select(func.count()).select_from(jobs)).scalar_one()
        history = conn.execute(select(func.count()).select_from(job_history)).scalar_one()
    engine.dispose()
    return {"jobs": args.jobs, "seconds": round(seconds, 3), "rate": round(args.jobs / seconds, 1),
            "ids": len(ids), "live": live, "history_rows": history}


def step_latency(args) -> dict:
    """Claim latency with `backlog` jobs waiting: one worker claims one job at a time and completes it."""
    if args.fresh:
        fresh_schema(args.url)
    engine = make_engine(args.url)
    queue = JobQueue(engine)
    with engine.connect() as conn:
        live = conn.execute(select(func.count()).select_from(jobs)).scalar_one()
        archived = conn.execute(select(func.count()).select_from(jobs_archive)).scalar_one()
    if live < args.backlog:
        queue.enqueue_many(noop_jobs(args.backlog - live))
    for _ in range(args.warmup):
        queue.complete([j.id for j in queue.claim("latency", limit=1)], "latency")
    claims, completes = [], []
    for _ in range(args.claims):
        t0 = time.perf_counter()
        [job] = queue.claim("latency", limit=1)
        t1 = time.perf_counter()
        queue.complete([job.id], "latency")
        claims.append((t1 - t0) * 1000)
        completes.append((time.perf_counter() - t1) * 1000)
    engine.dispose()
    return {"backlog": args.backlog, "archived_before": archived, "claims": args.claims,
            "claim_ms": percentiles(claims), "complete_ms": percentiles(completes)}


def step_fill(args) -> dict:
    """`jobs` jobs through the real engine: enqueued, claimed and completed (archived) in big batches, with
    the queue's housekeeping vacuum every `housekeeping` seconds (`jobs worker` runs it every 30 s) and once
    at the end, as the next periodic pass would."""
    engine = make_engine(args.url)
    queue = JobQueue(engine)
    started = last = time.perf_counter()
    done, vacuums = 0, []

    def housekeeping() -> None:
        t0 = time.perf_counter()
        if dead := queue.vacuum():
            vacuums.append({"dead_rows": dead, "seconds": round(time.perf_counter() - t0, 2)})

    while done < args.jobs:
        n = min(args.chunk, args.jobs - done)
        queue.enqueue_many(noop_jobs(n, done))
        while claimed := queue.claim("filler", limit=args.batch):
            queue.complete([j.id for j in claimed], "filler")
            if time.perf_counter() - last >= args.housekeeping:
                housekeeping()
                last = time.perf_counter()
        done += n
        elapsed = time.perf_counter() - started
        print(f"fill: {done} jobs archived after {elapsed:.0f} s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    housekeeping()
    with engine.connect() as conn:
        archived = conn.execute(select(func.count()).select_from(jobs_archive)).scalar_one()
        history = conn.execute(select(func.count()).select_from(job_history)).scalar_one()
    engine.dispose()
    return {"jobs": args.jobs, "seconds": round(seconds, 1), "rate": round(args.jobs / seconds, 1),
            "archived": archived, "history_rows": history, "housekeeping_every_s": args.housekeeping,
            "vacuums": vacuums}


def percentiles(values: list[float]) -> dict:
    s = sorted(values)

    def at(q: float) -> float:
        return round(s[min(len(s) - 1, int(q * len(s)))], 3)

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(s[-1], 3),
            "mean": round(sum(s) / len(s), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("step", choices=["drain", "enqueue", "latency", "fill", "reset"])
    p.add_argument("--url", required=True, help="SQLAlchemy URL whose options pin search_path to the schema")
    p.add_argument("--fresh", action="store_true", help="drop and create the schema first")
    p.add_argument("--jobs", type=int, default=50_000)
    p.add_argument("--workers", type=int, default=5)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--chunk", type=int, default=100_000, help="fill: jobs enqueued per round")
    p.add_argument("--backlog", type=int, default=10_000, help="latency: Created jobs waiting")
    p.add_argument("--claims", type=int, default=3000)
    p.add_argument("--housekeeping", type=float, default=30.0, help="fill: seconds between vacuum passes")
    p.add_argument("--warmup", type=int, default=200)
    args = p.parse_args()
    steps = {"drain": step_drain, "enqueue": step_enqueue, "latency": step_latency, "fill": step_fill,
             "reset": lambda a: fresh_schema(a.url) or {}}
    result = steps[args.step](args)
    print(json.dumps({**result, **own_usage()}))


if __name__ == "__main__":
    main()
