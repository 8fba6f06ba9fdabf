"""Open-loop load on `POST /api/operations`, run as its own process: one new operation per request at a fixed
rate, each followed on its connection by `GET /api/balances/{merchant}` whose `lakeVersion` must be at least
the POST's (the read includes the operation: accepted means committed at that version).

    python benchmarks/_intake_load.py --port 8000 --rate 2000 --duration 60 --token T --acked acked.txt

Latency of a POST runs from its scheduled send time (start + i / rate) to its answer (no coordinated
omission). Prints one JSON object: POST and read latencies (sorted, ms), statuses, errors, reads that missed
their operation; writes the ids of accepted operations to `--acked`, one a line.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter, deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._api_load import Connection, arguments


class BodyConnection(Connection):
    async def call(self, request: bytes) -> tuple[int, bytes]:
        """Send one request; its status and body."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        self.used = True
        length = next((int(line[15:]) for line in head.split(b"\r\n")[1:]
                       if line[:15].lower() == b"content-length:"), 0)
        return int(head[9:12]), await self.reader.readexactly(length) if length else b""


def post_request(host: str, token: str, body: bytes) -> bytes:
    return (f"POST /api/operations HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def operation(op_id: str, amount: str, merchant: dict) -> dict:
    """One confirmed capture of `merchant` (psp, local merchant, shop, currency) in the API's shape."""
    return {"kind": "confirmed", "falconOperationId": op_id, "externalReference": f"ref-{op_id}",
            "type": "capture", "amount": amount, "currency": merchant["currency"],
            "operationDate": "2026-11-01T10:00:00Z", "pspId": merchant["psp"],
            "localMerchantId": merchant["local"], "shopId": merchant["shop"]}


async def run(args) -> tuple[dict, list[str]]:
    host = f"{args.host}:{args.port}"
    merchant = json.loads(args.merchant)
    read = (f"GET /api/balances/{merchant['id']} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {args.token}\r\n\r\n").encode()
    rng = random.Random(args.seed)
    # oldest first, so every kept connection is used often: one idle past uvicorn's keep-alive timeout
    # (5 s) would be closed by the server and fail its next request
    idle = deque([await BodyConnection.open(args.host, args.port) for _ in range(32)])
    posts, reads, acked = [], [], []
    statuses, errors = Counter(), Counter()
    missed = 0
    pending: set[asyncio.Task] = set()

    async def one(i: int, scheduled: float) -> None:
        nonlocal missed
        op_id = f"{args.prefix}-{i}"
        body = json.dumps(operation(op_id, f"{rng.randint(100, 99_999) / 100:.2f}", merchant)).encode()
        conn = idle.popleft() if idle else None
        try:
            if conn is None:
                conn = await BodyConnection.open(args.host, args.port)
            status, answer = await asyncio.wait_for(conn.call(post_request(host, args.token, body)),
                                                    args.timeout)
            posts.append((time.perf_counter() - scheduled) * 1000)
            statuses[status] += 1
            if status != 200:
                idle.append(conn)
                return
            version = json.loads(answer)["lakeVersion"]
            acked.append(op_id)
            if args.read:
                started = time.perf_counter()
                status, answer = await asyncio.wait_for(conn.call(read), args.timeout)
                reads.append((time.perf_counter() - started) * 1000)
                if status != 200 or json.loads(answer)["lakeVersion"] < version:
                    missed += 1
            idle.append(conn)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, KeyError) as exc:
            if conn is not None:
                conn.close()
            errors[type(exc).__name__] += 1

    count = int(args.duration * args.rate)
    start = time.perf_counter() + 0.01
    lag = 0.0
    for i in range(count):
        scheduled = start + i / args.rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            lag = max(lag, -delay)
        task = asyncio.create_task(one(i, scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    sent = time.perf_counter() - start
    if pending:
        await asyncio.wait(list(pending))
    for conn in idle:
        conn.close()
    posts.sort()
    reads.sort()
    return {"requests": count, "send_rate": count / sent,
            "statuses": {str(k): v for k, v in statuses.items()},
            "errors": dict(errors), "reads_missing_their_operation": missed,
            "generator_max_send_lag_ms": lag * 1000, "post_ms": posts, "read_ms": reads}, acked


def main() -> None:
    p = arguments(__doc__.splitlines()[0], 2000)
    p.add_argument("--token", required=True)
    p.add_argument("--merchant", required=True, help="JSON: id, psp, local, shop, currency")
    p.add_argument("--prefix", default="live")
    p.add_argument("--acked", type=Path, required=True)
    p.add_argument("--no-read", dest="read", action="store_false", help="POST only, no balance read")
    args = p.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    result, acked = runner(run(args))
    args.acked.write_text("".join(f"{x}\n" for x in acked))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
