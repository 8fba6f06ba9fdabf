"""Open-loop HTTP load: GET requests at a fixed rate over keep-alive connections, run as its own process.

Each request has a scheduled send time (start + i / rate); its latency runs from that time to the last
byte of the response, so a slow server is charged for the queueing it causes (no coordinated omission).
A request finding no idle connection opens a new one. Minimal HTTP/1.1 over asyncio streams (uvloop when
installed) keeps the generator's own cost far below an HTTP client library's.

    python benchmarks/_api_load.py --port 8000 --rate 500 --duration 60 --requests reqs.json

`reqs.json` is a list of [path, authorization header]; each request picks one at random. Prints one JSON
object: latencies (sorted, ms), status counts, errors, achieved rates, the generator's own send lag.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.used = False  # has answered a request: the server may since have closed it as idle

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def get(self, request: bytes) -> int:
        """Send one request, read the whole response; returns the status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        self.used = True
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def run(host: str, port: int, rate: float, duration: float, templates: list[bytes], warmup: float,
              timeout: float, seed: int) -> dict:
    rng = random.Random(seed)
    idle: list[Connection] = [await Connection.open(host, port) for _ in range(16)]
    opened = [len(idle)]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    lag_max = 0.0
    pending: set[asyncio.Task] = set()

    async def new_connection() -> Connection:
        opened[0] += 1
        return await Connection.open(host, port)

    async def one(scheduled: float, request: bytes, record: bool) -> None:
        conn = idle.pop() if idle else None
        try:
            try:
                if conn is None:
                    conn = await new_connection()
                status = await asyncio.wait_for(conn.get(request), timeout)
            except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                if not conn.used or getattr(exc, "partial", b""):
                    raise
                conn.close()  # closed by the server while idle: retry once on a new connection
                conn = await new_connection()
                status = await asyncio.wait_for(conn.get(request), timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            if conn is not None:
                conn.close()
            if record:
                errors[type(exc).__name__] += 1
            return
        done = time.perf_counter()
        idle.append(conn)
        if record:
            latencies.append((done - scheduled) * 1000)
            statuses[status] += 1

    async def phase(seconds: float, record: bool) -> tuple[float, int]:
        nonlocal lag_max
        count = int(seconds * rate)
        start = time.perf_counter() + 0.01
        for i in range(count):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif record:
                lag_max = max(lag_max, -delay)
            task = asyncio.create_task(one(scheduled, rng.choice(templates), record))
            pending.add(task)
            task.add_done_callback(pending.discard)
        sent = time.perf_counter() - start
        if pending:
            await asyncio.wait(list(pending))
        return sent, count

    if warmup > 0:
        await phase(warmup, record=False)
    started = time.perf_counter()
    send_seconds, count = await phase(duration, record=True)
    total_seconds = time.perf_counter() - started
    for conn in idle:
        conn.close()
    latencies.sort()
    return {
        "requests": count,
        "completed": len(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": dict(errors),
        "send_rate": count / send_seconds,
        "completion_rate": len(latencies) / total_seconds,
        "generator_max_send_lag_ms": lag_max * 1000,
        "connections_opened": opened[0],
        "latencies_ms": latencies,
    }


def arguments(description: str, rate: float) -> argparse.ArgumentParser:
    """The options every load process takes; callers add how they make their requests."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, default=rate)
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--seed", type=int, default=1)
    return p


def run_and_print(args: argparse.Namespace, templates: list[bytes]) -> None:
    """`run` on uvloop when installed; its JSON on stdout."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    a = args
    result = runner(run(a.host, a.port, a.rate, a.duration, templates, a.warmup, a.timeout, a.seed))
    json.dump(result, sys.stdout)


def main() -> None:
    p = arguments(__doc__.splitlines()[0], 500)
    p.add_argument("--requests", help="JSON file: list of [path, authorization header] for GET requests")
    p.add_argument("--raw", help="JSON file: list of whole HTTP/1.1 requests (any method, with body)")
    args = p.parse_args()
    if bool(args.requests) == bool(args.raw):
        p.error("give one of --requests and --raw")
    with open(args.requests or args.raw) as f:
        given = json.load(f)
    host = f"{args.host}:{args.port}"
    if args.raw:
        templates = [r.encode() for r in given]
    else:
        templates = [f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n\r\n".encode()
                     for path, auth in given]
    run_and_print(args, templates)


if __name__ == "__main__":
    main()
