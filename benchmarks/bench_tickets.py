"""Ticketing benchmarks of issue 5 ("Performance"), on the PostgreSQL server at 127.0.0.1:5432.

1. Bulk: 100,000 tickets created and assigned across the 50 agents of one group by `create_tickets` in
   batches of 5,000 (as `tickets create --file` does). Target: <= 60 s. Peer, same run: the per-ticket
   path (`create_ticket`, one transaction each) over 2,000 tickets, its rate extrapolated to 100,000.
2. Fairness: 8 clients (threads) calling `create_ticket` at once, 10,000 tickets into a fresh group of 50
   agents. Target: every agent within 1 ticket of the others.
3. Redistribution: an agent holding 10,000 open tickets marked unavailable (`update_agent`) hands them to
   the 49 others of its group. Target: <= 5 s. Peer: the same tickets moved one `update_tickets` call each
   (500 of them, extrapolated).
4. `POST /api/tickets` at 200 requests/s for 20 s (open loop, `_api_load.run`: latency from each request's
   scheduled send time) against `ops-pipeline api` on PostgreSQL, 50 agents, PostgreSQL already holding
   the tickets above. Target: p99 <= 50 ms. Peers, same server, right after: the same creates one
   transaction per request (`POST /api/tickets/bulk` with one ticket: no group commit), 10 s, and
   `GET /api/tickets/{id}`.

    flock /tmp/ops-bench.lock .venv/bin/python -m benchmarks.bench_tickets
    .venv/bin/python -m benchmarks.bench_tickets --bulk 20000 --api-duration 5      # quick

Writes `benchmarks/results/tickets.json` and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._api_load import run as load  # noqa: E402
from benchmarks.bench_balance_api import (  # noqa: E402
    free_port,
    percentile,
    postgres_url,
    start_server,
    stop_server,
)
from ops_pipeline.auth import mint_token  # noqa: E402
from ops_pipeline.settings import Settings  # noqa: E402
from ops_pipeline.tickets import agents, groups  # noqa: E402
from ops_pipeline.tickets import tickets as service  # noqa: E402
from ops_pipeline.workspace import Workspace  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "tickets.json"
HOME = ROOT / "benchmarks" / ".data" / "tickets"
PG_SCHEMA = "bench_tickets"
TARGETS = {"bulk_100k_seconds": 60.0, "fairness_spread": 1, "reassign_10k_seconds": 5.0, "api_p99_ms": 50.0}


def workspace(admin_url: str) -> Workspace:
    """A workspace on a fresh PostgreSQL schema."""
    url = postgres_url(admin_url, PG_SCHEMA)
    ws = Workspace(Settings.from_env({"OPS_HOME": str(HOME), "OPS_DATABASE_URL": url}))
    ws.init()
    return ws


def team(ws: Workspace, name: str, size: int) -> tuple[int, list[str]]:
    group_id = groups.create_group(ws, "bench", name)["group_id"]
    names = [f"{name.lower()}-{i:02}" for i in range(size)]
    for agent_id in names:
        agents.create_agent(ws, "bench", agent_id, agent_id, f"{agent_id}@ops.example", [group_id])
    return group_id, names


def spread(ws: Workspace, group_id: int, leave_out: str | None = None) -> dict:
    today = [a["tickets_assigned_today"] for a in agents.list_agents(ws, group_id)
             if a["agent_id"] != leave_out]
    return {"min": min(today), "max": max(today), "spread": max(today) - min(today), "total": sum(today)}


def timed(call, *args) -> float:
    started = time.perf_counter()
    call(*args)
    return time.perf_counter() - started


def bulk(ws: Workspace, total: int, batch: int, peer: int) -> dict:
    group_id, _ = team(ws, "Bulk", 50)

    def create_all() -> None:
        for start in range(0, total, batch):
            items = [service.NewTicket(group_id=group_id, user_id=f"U{i}", priority=1 + i % 5)
                     for i in range(start, min(total, start + batch))]
            service.create_tickets(ws, "bench", items)

    seconds = timed(create_all)
    peer_group, _ = team(ws, "BulkPeer", 50)
    peer_seconds = timed(lambda: [service.create_ticket(ws, "bench", group_id=peer_group, user_id=f"U{i}")
                                  for i in range(peer)])
    return {"tickets": total, "agents": 50, "batch": batch, "seconds": round(seconds, 2),
            "tickets_per_second": round(total / seconds), "fairness": spread(ws, group_id),
            "meets_target": seconds <= TARGETS["bulk_100k_seconds"] * total / 100_000,
            "peer_per_ticket": {"tickets": peer, "seconds": round(peer_seconds, 2),
                                "tickets_per_second": round(peer / peer_seconds),
                                "extrapolated_seconds_for_bulk": round(peer_seconds * total / peer, 1)}}


def fairness(ws: Workspace, clients: int, each: int) -> dict:
    group_id, _ = team(ws, "Fair", 50)

    def client(_: int) -> None:
        for _ in range(each):
            service.create_ticket(ws, "bench", group_id=group_id, user_id="U")

    with ThreadPoolExecutor(clients) as pool:
        seconds = timed(lambda: list(pool.map(client, range(clients))))
    result = spread(ws, group_id)
    return {"clients": clients, "tickets": clients * each, "agents": 50, "seconds": round(seconds, 2),
            "tickets_per_second": round(clients * each / seconds), **result,
            "meets_target": result["spread"] <= TARGETS["fairness_spread"]
            and result["total"] == clients * each}


def reassign(ws: Workspace, total: int, peer: int) -> dict:
    group_id, names = team(ws, "Move", 50)
    holder, others = names[0], names[1:]
    for agent_id in others:
        agents.update_agent(ws, "bench", agent_id, {"active_status": False})
    for start in range(0, total, 5000):
        service.create_tickets(ws, "bench", [service.NewTicket(group_id=group_id, user_id=f"U{i}")
                                             for i in range(start, min(total, start + 5000))])
    for agent_id in others:
        agents.update_agent(ws, "bench", agent_id, {"active_status": True})
    seconds = timed(agents.update_agent, ws, "bench", holder, {"active_status": False})
    held = service.Filters(group_id=group_id, status="open", agent_id=holder)
    left = len(service.list_tickets(ws, held, limit=10).tickets)
    moved = spread(ws, group_id, leave_out=holder)
    # the peer: the same kind of move, one ticket per call, back to the holder
    agents.update_agent(ws, "bench", holder, {"active_status": True})
    ids = [t["id"] for t in service.list_tickets(ws, service.Filters(group_id=group_id, status="open"),
                                                 limit=peer).tickets]
    peer_seconds = timed(lambda: [service.update_tickets(ws, "bench", [i], {"agent_id": holder})
                                  for i in ids])
    return {"tickets": total, "agents_taking_them": len(others), "seconds": round(seconds, 2),
            "left_with_the_agent": left, "taken_by_the_others": moved,
            "meets_target": seconds <= TARGETS["reassign_10k_seconds"] and left == 0,
            "peer_one_call_per_ticket": {"tickets": len(ids), "seconds": round(peer_seconds, 2),
                                         "extrapolated_seconds": round(peer_seconds * total / len(ids), 1)}}


def templates(host: str, token: str, method_paths: list[tuple[str, str, dict | None]]) -> list[bytes]:
    out = []
    for method, path, body in method_paths:
        data = json.dumps(body).encode() if body is not None else b""
        head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
        out.append(head.encode() + data)
    return out


def latency(result: dict, ok_status: str) -> dict:
    lat = result.pop("latencies_ms")
    ok = result["statuses"].get(ok_status, 0)
    return {"requests": result["requests"], "ok": ok, "errors": result["completed"] - ok
            + sum(result["errors"].values()), "statuses": result["statuses"],
            "achieved_rate": round(result["send_rate"], 1)} | {
        name: round(percentile(lat, q), 2)
        for name, q in (("p50_ms", 0.5), ("p90_ms", 0.9), ("p99_ms", 0.99), ("max_ms", 1.0))}


def api(ws: Workspace, rate: float, duration: float, warmup: float, workers: int) -> dict:
    group_id, _ = team(ws, "Api", 50)
    known = service.list_tickets(ws, service.Filters(), limit=200).tickets
    port = free_port()
    host = f"127.0.0.1:{port}"
    token = mint_token(ws.settings, "ops", "bench", ttl_seconds=3600)
    creates = templates(host, token, [("POST", "/api/tickets", {"groupId": group_id, "userId": f"U{i}",
                                                                "priority": 1 + i % 5}) for i in range(200)])
    reads = templates(host, token, [("GET", f"/api/tickets/{t['id']}", None) for t in known])
    singles = templates(host, token, [("POST", "/api/tickets/bulk", {"tickets": [{"groupId": group_id,
                                                                               "userId": f"U{i}"}]})
                                      for i in range(200)])
    server = start_server(ws.settings, port, workers)
    try:
        created = latency(asyncio.run(load("127.0.0.1", port, rate, duration, creates, warmup, 10, 1)), "201")
        unbatched = latency(asyncio.run(load("127.0.0.1", port, rate, min(duration, 10), singles, warmup, 60,
                                             1)), "201")
        read = latency(asyncio.run(load("127.0.0.1", port, rate, duration, reads, warmup, 10, 1)), "200")
    finally:
        stop_server(server)
    return {"rate": rate, "duration_s": duration, "warmup_s": warmup, "server_workers": workers,
            "agents": 50, "create": created, "fairness": spread(ws, group_id),
            "meets_target": created["errors"] == 0 and created["p99_ms"] <= TARGETS["api_p99_ms"],
            "peer_unbatched_create": unbatched, "peer_get_ticket": read}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-url", default=os.environ.get("OPS_BENCH_PG_URL",
                                                      "postgresql+psycopg2://postgres@127.0.0.1:5432/test"))
    p.add_argument("--bulk", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=5_000)
    p.add_argument("--peer", type=int, default=2_000)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--each", type=int, default=1_250)
    p.add_argument("--reassign", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--api-duration", type=float, default=20)
    p.add_argument("--api-warmup", type=float, default=3)
    p.add_argument("--api-workers", type=int, default=1)
    args = p.parse_args()
    ws = workspace(args.pg_url)
    try:
        results = {
            "bulk": bulk(ws, args.bulk, args.batch, args.peer),
            "fairness": fairness(ws, args.clients, args.each),
            "reassign": reassign(ws, args.reassign, 500),
            "api": api(ws, args.rate, args.api_duration, args.api_warmup, args.api_workers),
        }
    finally:
        ws.close()
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "at": datetime.now(UTC).isoformat(timespec="seconds")}
    results["targets"] = TARGETS
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if not isinstance(vv, dict)} | (
        {"p99_ms": v["create"]["p99_ms"]} if k == "api" else {}) for k, v in results.items()
        if k not in ("machine", "targets")}, indent=2))


if __name__ == "__main__":
    main()
