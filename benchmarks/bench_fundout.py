"""Auto fund-out on PostgreSQL: 40,000 businesses due in one slot, the bank simulator on loopback.

Targets: every payout done (bank paid, PAYOUT entry in the ledger, hold captured, notification queued) in
<= 40 s (issue 15; 60 s before); `POST /business/autofundout` p99 <= 200 ms; config API p99 <= 100 ms at
200 requests/s.
Peers from the same run: the bank alone (our client and the simulator, as many payouts, no database), and
the one-payout-at-a-time path (manual cash-out: hold, pay, one ledger commit each) on a sample.

    .venv/bin/python -m benchmarks.bench_fundout                    # 40,000 businesses
    .venv/bin/python -m benchmarks.bench_fundout --businesses 2000 --duration 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import duckdb
import httpx
from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_balance_api import free_port, percentile, postgres_url, start_server, stop_server  # noqa: E402
from ops_pipeline.auth import mint_token  # noqa: E402
from ops_pipeline.db.schema import fundout_configs, outbox  # noqa: E402
from ops_pipeline.fundout import batch, cashout  # noqa: E402
from ops_pipeline.fundout.bank import Bank  # noqa: E402
from ops_pipeline.lake.tables import BALANCE_OPERATIONS  # noqa: E402
from ops_pipeline.ledger import balances  # noqa: E402
from ops_pipeline.ledger.entries import Entry, post_entries  # noqa: E402
from ops_pipeline.settings import Settings  # noqa: E402
from ops_pipeline.workspace import Workspace  # noqa: E402

DATA = ROOT / "benchmarks" / ".data" / "fundout"
RESULTS = ROOT / "benchmarks" / "results" / "fundout.json"
ADMIN_URL = os.environ.get("OPS_BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
SLOT = datetime(2026, 11, 23, 22, tzinfo=UTC)  # a Monday, 22:00 UTC
TARGET = {"batch_s": 40, "trigger_p99_ms": 200, "config_p99_ms": 100, "config_rate": 200}


def start_bank(port: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "ops_pipeline.partners.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("bank simulator did not start")


def build_world(ws: Workspace, n: int, seed: int) -> dict:
    """n businesses with EUR balances (one in ten also USD), each with a config due in SLOT."""
    rng = random.Random(seed)
    ids = [f"BIZ{i:06d}" for i in range(n)]
    entries = [
        Entry("ADJUSTMENT", f"fund-{b}-EUR", b, "EUR", rng.randint(10_000, 1_000_000), "adjustment")
        for b in ids
    ]
    entries += [
        Entry("ADJUSTMENT", f"fund-{b}-USD", b, "USD", rng.randint(10_000, 500_000), "adjustment")
        for b in ids[::10]
    ]
    post_entries(ws, entries, "bench-funding")
    now = datetime.now(UTC)
    kinds = [("H", None), ("D", None), ("W", 1), ("M", 23)]  # all due on Monday 23rd at 22:00 UTC
    rows = []
    for i, b in enumerate(ids):
        freq, day = kinds[i % 4]
        rows.append(
            dict(
                business_id=b,
                freq_type=freq,
                day=day,
                hour=22,
                timezone="UTC",
                enabled=True,
                minimum_balance_milli=rng.choice([0, 10_000, 25_500, 50_000]),
                notify_email=f"{b.lower()}@merchants.test" if i % 10 == 0 else None,
                created_at=now,
                created_by="bench",
                updated_at=now,
                updated_by="bench",
            )
        )
    with ws.engine.begin() as conn:
        conn.execute(insert(fundout_configs), rows)
    return {"businesses": n, "balances": len(entries)}


def check(ws: Workspace, report: batch.BatchReport, world: dict) -> dict:
    """Every payout in the bank, the ledger and the outbox; every balance left exactly at its minimum."""
    con = duckdb.connect()
    log = ws.lake.relation(con, BALANCE_OPERATIONS.name)
    posted = con.sql(f"SELECT count(*) FROM {log} WHERE source = 'PAYOUT'").fetchall()[0][0]
    with ws.engine.connect() as conn:
        notices = conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.event == "fundout.paid")
        ).scalar_one()
        minimum = dict(
            tuple(r)
            for r in conn.execute(
                select(fundout_configs.c.business_id, fundout_configs.c.minimum_balance_milli)
            )
        )
        left = balances.available_all(conn, datetime.now(UTC), list(minimum))
    wrong = [k for k, v in left.items() if v != -((-minimum[k[0]] * 100) // 1000)]
    return {
        "payout_entries": posted,
        "paid_notifications": notices,
        "balances_not_at_minimum": len(wrong),
        "all_paid": report.summary.paid == world["balances"] == posted and not wrong,
    }


def bank_alone(settings: Settings, n: int) -> dict:
    """Our bank client and the simulator alone: n payouts sent as the batch sends them, no database."""
    run = uuid.uuid4().hex[:8]
    items = [
        SimpleNamespace(id=f"peer-{run}-{i}", business_id=f"PEER{i}", currency="EUR", amount_minor=100)
        for i in range(n)
    ]
    bank = Bank(settings)
    started = time.perf_counter()
    outcomes = bank.pay(items)
    seconds = time.perf_counter() - started
    bank.close()
    paid = sum(o.status == "paid" for o in outcomes.values())
    return {"payouts": n, "seconds": round(seconds, 2), "rate": round(n / seconds, 1), "paid": paid}


def one_at_a_time(ws: Workspace, n: int) -> dict:
    """The manual cash-out path per payout (hold, pay, one ledger commit), on n fresh businesses."""
    ids = [f"ONE{i:05d}" for i in range(n)]
    post_entries(
        ws, [Entry("ADJUSTMENT", f"fund-{b}", b, "EUR", 5_000, "adjustment") for b in ids], "bench-one"
    )
    bank = Bank(ws.settings)
    started = time.perf_counter()
    for b in ids:
        assert cashout.cashout(ws, b, "50.00", "EUR", "bench", bank=bank).status == "posted"
    seconds = time.perf_counter() - started
    bank.close()
    return {"payouts": n, "seconds": round(seconds, 2), "rate": round(n / seconds, 1)}


def load(port: int, templates: list[bytes], rate: float, duration: float) -> dict:
    """`_api_load.py` in its own process with these raw requests (2 s of warm-up first)."""
    spec = DATA / f"requests-{port}.json"
    spec.write_text(json.dumps([t.decode() for t in templates]))
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "_api_load.py"),
        "--port",
        str(port),
        "--rate",
        str(rate),
        "--duration",
        str(duration),
        "--warmup",
        "2",
        "--raw",
        str(spec),
    ]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    lat = result.pop("latencies_ms")
    return {
        "requests": result["requests"],
        "statuses": result["statuses"],
        "errors": result["errors"],
        "achieved_rate": round(result["send_rate"], 1),
        "latency_ms": {
            q: round(percentile(lat, v), 2) for q, v in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))
        },
    }


def request(method: str, path: str, token: str, body: dict | None = None) -> bytes:
    data = json.dumps(body).encode() if body is not None else b""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def config_requests(settings: Settings, n: int, seed: int) -> list[bytes]:
    """Merchants reading and changing their own configs (3 reads : 1 write)."""
    rng = random.Random(seed)
    out = []
    for i in range(2000):
        b = f"BIZ{rng.randrange(n):06d}"
        path, token = (
            f"/business-profiles/business/{b}/autofundout",
            mint_token(settings, "merchant", b, 7200),
        )
        body = {"minimumBalance": f"{rng.randint(0, 99)}.5", "enabled": True}
        out.append(request("PUT", path, token, body) if i % 4 == 0 else request("GET", path, token))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--businesses", type=int, default=40_000)
    p.add_argument("--duration", type=float, default=30, help="seconds of each API load")
    p.add_argument("--one-at-a-time", type=int, default=100, help="payouts of the per-payout peer")
    p.add_argument("--seed", type=int, default=11)
    args = p.parse_args()
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    bank_port = free_port()
    bank_proc = start_bank(bank_port)
    bank_url = f"http://127.0.0.1:{bank_port}"
    os.environ["OPS_BANK_URL"] = bank_url
    settings = Settings.from_env(
        {
            "OPS_HOME": str(DATA / "home"),
            "OPS_DATABASE_URL": postgres_url(ADMIN_URL, "bench_fundout"),
            "OPS_BANK_URL": bank_url,
        }
    )
    ws = Workspace(settings)
    results: dict = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores",
        "target": TARGET,
    }
    try:
        ws.init()
        started = time.perf_counter()
        world = build_world(ws, args.businesses, args.seed)
        results["world"] = {**world, "build_seconds": round(time.perf_counter() - started, 1)}
        load_before = os.getloadavg()
        started = time.perf_counter()
        report = batch.run_slot(ws, SLOT, "bench")
        seconds = time.perf_counter() - started
        results["batch"] = {
            "seconds": round(seconds, 2),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "payouts_per_s": round(world["balances"] / seconds, 1),
            "summary": report.summary.stored(),
            **check(ws, report, world),
        }
        results["batch"]["meets_target"] = results["batch"]["all_paid"] and seconds <= TARGET["batch_s"]
        results["peer_bank_alone"] = bank_alone(settings, world["balances"])
        results["peer_one_at_a_time"] = one_at_a_time(ws, args.one_at_a_time)
        results["peer_one_at_a_time"]["extrapolated_s_for_batch"] = round(
            world["balances"] / results["peer_one_at_a_time"]["rate"], 1
        )
        api_port = free_port()
        server = start_server(settings, api_port, 1)
        try:
            results["config_api"] = load(
                api_port,
                config_requests(settings, args.businesses, args.seed),
                TARGET["config_rate"],
                args.duration,
            )
            internal = mint_token(settings, "internal", "scheduler", 7200)
            triggers = [request("POST", "/business/autofundout", internal)]
            results["trigger_api"] = load(api_port, triggers, 10, args.duration)
        finally:
            stop_server(server)
        for name, status, limit in (
            ("config_api", "200", "config_p99_ms"),
            ("trigger_api", "202", "trigger_p99_ms"),
        ):
            run = results[name]
            all_ok = not run["errors"] and run["statuses"] == {status: run["requests"]}
            run["meets_target"] = all_ok and run["latency_ms"]["p99"] <= TARGET[limit]
    finally:
        ws.close()
        os.killpg(bank_proc.pid, signal.SIGTERM)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
