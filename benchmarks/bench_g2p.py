"""G2P disbursements on PostgreSQL: an envelope of 1,000,000 disbursements end to end (issue 12).

The envelope and its disbursements are created through the Partner API over real HTTP (`ops-pipeline api`,
bearer token + ES256 detached body signature), in calls of 10,000; then every pipeline step runs
(`run_step`, as the CLI and the Dagster sensors do) against the bank/partner simulator on loopback (its
mapper resolves every beneficiary, its bank fails a small share of payments); then the bank's MT940
statement of the day (one line per payment) is uploaded through `POST /g2p-bridge/upload_mt940` and
reconciled. Target: <= 10 minutes end to end on 2 cores; peak memory of every process recorded.

Peers from the same run: the disburse step done one disbursement at a time (a sample of batches of one,
extrapolated), and what OpenG2P's default beat settings (2 tasks per cycle, one cycle an hour per step)
would take for the same envelope, computed from that configuration.

    .venv/bin/python -m benchmarks.bench_g2p                          # 1,000,000 disbursements
    .venv/bin/python -m benchmarks.bench_g2p --disbursements 10000    # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import shutil
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_balance_api import (  # noqa: E402
    free_port,
    postgres_url,
    proc_stats,
    process_tree,
    start_server,
    stop_server,
)
from benchmarks.bench_fundout import start_bank  # noqa: E402
from ops_pipeline.auth import mint_token  # noqa: E402
from ops_pipeline.db.schema import g2p_disbursements  # noqa: E402
from ops_pipeline.demo.disbursements import fa_of  # noqa: E402
from ops_pipeline.disbursements import batches, envelopes, partner_keys, programs  # noqa: E402
from ops_pipeline.disbursements.pipeline import run_step  # noqa: E402
from ops_pipeline.ledger.entries import Entry, post_entries  # noqa: E402
from ops_pipeline.settings import Settings  # noqa: E402
from ops_pipeline.workspace import Workspace  # noqa: E402

DATA = ROOT / "benchmarks" / ".data" / "g2p"
RESULTS = ROOT / "benchmarks" / "results" / "g2p.json"
ADMIN_URL = os.environ.get("OPS_BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
PROGRAM, ACCOUNT, CURRENCY, PARTNER = "BENCH-CT", "G2P-BENCH-0001", "KES", "bench-mis"
AMOUNT_MINOR = 250_000  # 2,500.00 KES each
TARGET_S = 600
SPAWN = multiprocessing.get_context("spawn")  # the Delta Lake library's runtime does not survive a fork
# OpenG2P G2P Bridge defaults (celery beat producers, /work/shared/OPENG2P_NOTES.md section 3): each step's
# producer runs once per cycle and enqueues at most this many tasks (one per envelope or batch).
OPENG2P = {"cycle_seconds": 3600, "tasks_per_cycle": 2}


class Partner:
    """The MIS side of the Partner API: bearer token, ES256 detached signature of each body."""

    def __init__(self, settings: Settings, port: int, key: ec.EllipticCurvePrivateKey):
        self.key = key
        token = mint_token(settings, "partner", PARTNER, ttl_seconds=6 * 3600)
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/g2p-bridge",
            timeout=600,
            headers={"Authorization": f"Bearer {token}"},
        )

    def post(self, action: str, message) -> dict:
        body = json.dumps(
            {
                "header": {
                    "message_id": str(uuid.uuid4()),
                    "message_ts": datetime.now(UTC).isoformat(),
                    "action": action,
                },
                "message": message,
            }
        ).encode()
        signature = jwt.api_jws.encode(body, self.key, algorithm="ES256", is_payload_detached=True)
        reply = self.client.post(
            f"/{action}", content=body, headers={"Content-Type": "application/json", "Signature": signature}
        )
        answer = reply.json()
        if reply.status_code != 200 or answer["header"]["status"] != "succ":
            raise SystemExit(f"{action}: {reply.status_code} {json.dumps(answer['header'])[:400]}")
        return answer["message"]

    def upload(self, data: bytes) -> dict:
        reply = self.client.post("/upload_mt940", files={"statement_file": ("sponsor.sta", data)})
        answer = reply.json()
        if answer["header"]["status"] != "succ":
            raise SystemExit(f"upload_mt940: {json.dumps(answer['header'])[:400]}")
        return answer["message"]


def setup(n: int, sample: int, fail_share: float, api_workers: int):
    """A fresh PostgreSQL schema and OPS_HOME; the simulator (mapper linked for every beneficiary, sponsor
    account funded) and the API server started; program, partner key, ledger funding."""
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    sim_port, api_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    settings = Settings.from_env(
        {
            "OPS_HOME": str(DATA / "home"),
            "OPS_DATABASE_URL": postgres_url(ADMIN_URL, "bench_g2p"),
            "OPS_G2P_MAPPER_URL": sim_url,
            "OPS_G2P_BANK_URL": sim_url,
        }
    )
    ws = Workspace(settings)
    ws.init()
    funding = (n + sample) * AMOUNT_MINOR
    programs.add_program(
        ws,
        mnemonic=PROGRAM,
        name="Bench cash transfer",
        sponsor_bank_code="EXB",
        sponsor_account=ACCOUNT,
        currency=CURRENCY,
        actor="bench",
    )
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    partner_keys.add_key(ws, PARTNER, "ES256", pem, "bench")
    post_entries(
        ws,
        [Entry("ADJUSTMENT", "bench-funding", f"g2p:{PROGRAM}", CURRENCY, funding, "g2p_funding")],
        "bench-funding",
    )
    sim = start_bank(sim_port)
    with httpx.Client(base_url=sim_url, timeout=600) as c:
        c.post(
            "/g2p/bank/accounts",
            json={"account_number": ACCOUNT, "currency": CURRENCY, "balance": str(funding // 100)},
        ).raise_for_status()
        for start in range(0, n + sample, 100_000):
            links = [
                [f"BEN{i:08d}", fa_of(i), f"Beneficiary {i}"]
                for i in range(start, min(n + sample, start + 100_000))
            ]
            c.post("/_sim/g2p/links", json={"links": links}).raise_for_status()
        c.post("/_sim/g2p/fail_share", json={"share": fail_share}).raise_for_status()
    api = start_server(settings, api_port, api_workers)
    return ws, sim, api, Partner(settings, api_port, key), sim_url


def envelope(partner: Partner, n: int, cycle: str) -> str:
    today = datetime.now(UTC).date().isoformat()
    return partner.post(
        "create_disbursement_envelope",
        {
            "benefit_program_mnemonic": PROGRAM,
            "disbursement_frequency": "OnDemand",
            "cycle_code_mnemonic": cycle,
            "number_of_beneficiaries": n,
            "number_of_disbursements": n,
            "total_disbursement_amount": str(n * AMOUNT_MINOR // 100),
            "disbursement_schedule_date": today,
        },
    )["disbursement_envelope_id"]


def items(envelope_id: str, first: int, count: int) -> list[dict]:
    return [
        {
            "disbursement_envelope_id": envelope_id,
            "beneficiary_id": f"BEN{i:08d}",
            "beneficiary_name": f"Beneficiary {i}",
            "disbursement_amount": str(AMOUNT_MINOR // 100),
            "narrative": "bench cycle",
        }
        for i in range(first, first + count)
    ]


def drain(settings: Settings, step: str, worker: str, limit: int, more, out) -> None:
    """A step runner (what a sensor's runs do): run `step` until nothing is left for it and, while `more`
    is unset, more may come; puts (step, worker, seconds, claimed, errors) on `out`."""
    ws = Workspace(settings)
    started, claimed, errors = time.perf_counter(), 0, 0
    while True:
        run = run_step(ws, step, worker=worker, limit=limit)
        claimed, errors = claimed + run.claimed, errors + run.errors
        if not run.claimed:
            if more is None or more.is_set():
                if more is None or not run_step(ws, step, worker=worker, limit=limit).claimed:
                    break
                continue
            time.sleep(0.2)
    ws.close()
    out.put((step, worker, round(time.perf_counter() - started, 2), claimed, errors))


def runners(settings: Settings, step: str, count: int, limit: int, more=None) -> tuple:
    """`count` runner processes of `step` started; join with `joined`."""
    out = SPAWN.Queue()
    procs = [
        SPAWN.Process(target=drain, args=(settings, step, f"bench-{step}-{i}", limit, more, out))
        for i in range(count)
    ]
    for p in procs:
        p.start()
    return procs, out


def joined(started: tuple) -> dict:
    procs, out = started
    for p in procs:
        p.join()
        if p.exitcode:
            raise SystemExit(f"a step runner exited with {p.exitcode}")
    results = [out.get() for _ in procs]
    step = results[0][0]
    done = {
        "seconds": max(r[2] for r in results),
        "runners": len(results),
        "claimed": sum(r[3] for r in results),
        "errors": sum(r[4] for r in results),
    }
    print(f"  {step}: {done}", flush=True)
    return done


def statuses(ws: Workspace, envelope_id: str) -> dict[str, int]:
    d = g2p_disbursements.c
    with ws.engine.connect() as conn:
        return dict(
            conn.execute(
                select(d.status, func.count()).where(d.envelope_id == envelope_id).group_by(d.status)
            ).all()
        )


def one_at_a_time(ws: Workspace, partner: Partner, n: int, sample: int, full_disburse_s: float) -> dict:
    """The disburse step done one disbursement at a time: an envelope of `sample` batches of one (created
    by the core, untimed), prepared by the other steps, then its disburse step timed and extrapolated to n."""
    env_id = envelope(partner, sample, "ONE-AT-A-TIME")
    for i in range(sample):
        item = items(env_id, n + i, 1)[0]
        batches.create_disbursements(
            ws,
            [
                batches.Item(
                    env_id,
                    item["beneficiary_id"],
                    item["beneficiary_name"],
                    item["disbursement_amount"],
                    item["narrative"],
                )
            ],
            actor=f"partner:{PARTNER}",
        )
    for step in ("fa_resolution", "funds_check", "funds_block"):
        while run_step(ws, step, worker="bench-one", limit=sample).claimed:
            pass
    started = time.perf_counter()
    done = 0
    while (run := run_step(ws, "disburse", worker="bench-one", limit=1)).claimed:
        done += run.processed
    seconds = time.perf_counter() - started
    per = seconds / max(done, 1)
    return {
        "sample": done,
        "seconds": round(seconds, 2),
        "ms_per_disbursement": round(per * 1000, 2),
        "extrapolated_s": round(per * n),
        "extrapolated_h": round(per * n / 3600, 2),
        "batched_disburse_s": full_disburse_s,
        "speedup": round(per * n / max(full_disburse_s, 1e-9), 1),
        "note": f"measured on {done} disbursements, extrapolated linearly to {n:,}",
    }


def openg2p_beat(n: int, call_size: int) -> dict:
    """Hours OpenG2P's beat would need for the envelope: each step's producer runs once a cycle with at
    most `tasks_per_cycle` tasks, one per batch (mapper, disburse) or envelope (funds check, block,
    statement). Disburse waits for the block, the block for the check; resolution runs alongside."""
    batches_n = math.ceil(n / call_size)
    per_cycle, cycle = OPENG2P["tasks_per_cycle"], OPENG2P["cycle_seconds"]
    mapper_cycles = math.ceil(batches_n / per_cycle)
    check, block = 1, 2  # cycles at whose end each is done (first cycle: check; second: block)
    disburse_cycles = math.ceil(batches_n / per_cycle)
    disbursed = block + disburse_cycles
    statement = disbursed + 1
    total = max(statement, mapper_cycles + 1)
    return {
        **OPENG2P,
        "batches": batches_n,
        "mapper_cycles": mapper_cycles,
        "funds_check_cycles": check,
        "funds_block_cycles": 1,
        "disburse_cycles": disburse_cycles,
        "statement_cycles": 1,
        "cycles_end_to_end": total,
        "hours_end_to_end": round(total * cycle / 3600, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--disbursements", type=int, default=1_000_000)
    parser.add_argument("--call-size", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=200, help="disbursements of the one-at-a-time peer")
    parser.add_argument("--fail-share", type=float, default=0.005)
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--limit", type=int, default=4, help="rows a step run claims")
    parser.add_argument("--runners", type=int, default=2, help="disburse step runners at once")
    args = parser.parse_args()
    n = args.disbursements
    ws, sim, api, partner, sim_url = setup(n, args.sample, args.fail_share, args.api_workers)
    try:
        phases, steps = {}, {}
        load_before = os.getloadavg()
        started = time.perf_counter()
        env_id = envelope(partner, n, "BENCH-1")
        created = SPAWN.Event()
        resolving = runners(ws.settings, "fa_resolution", 1, args.limit, created)  # alongside, as a sensor's
        calls = []
        for first in range(0, n, args.call_size):
            t = time.perf_counter()
            partner.post("create_disbursements", items(env_id, first, min(args.call_size, n - first)))
            calls.append(time.perf_counter() - t)
        created.set()
        phases["create_api_s"] = round(time.perf_counter() - started, 2)
        print(f"  created {n:,} in {len(calls)} calls: {phases['create_api_s']} s", flush=True)
        for step in ("funds_check", "funds_block"):
            steps[step] = joined(runners(ws.settings, step, 1, args.limit))
        resolved = SPAWN.Event()  # disburse takes each batch once resolved, while the rest resolve
        disbursing = runners(ws.settings, "disburse", args.runners, args.limit, resolved)
        steps["fa_resolution"] = joined(resolving)
        resolved.set()
        steps["disburse"] = joined(disbursing)
        phases["disbursed_s"] = round(time.perf_counter() - started, 2)
        notifying = runners(ws.settings, "notify", 1, args.limit)  # alongside the statement
        t = time.perf_counter()
        with httpx.Client(base_url=sim_url, timeout=600) as c:
            data = c.get(f"/g2p/bank/statements/mt940/{ACCOUNT}").json()["content"].encode()
        phases["statement_fetch_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        uploaded = partner.upload(data)
        phases["upload_mt940_s"] = round(time.perf_counter() - t, 2)
        print(f"  upload_mt940: {phases['upload_mt940_s']} s {uploaded}", flush=True)
        steps["notify"] = joined(notifying)
        total = round(time.perf_counter() - started, 2)
        status = envelopes.envelope_status(ws, env_id).envelope
        counts = statuses(ws, env_id)
        memory = {
            "bench_process_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "api_server_mib": proc_stats(process_tree(api.pid))["peak_rss_mib"],
            "simulator_mib": proc_stats(process_tree(sim.pid))["peak_rss_mib"],
        }
        ok = (
            status.shipped_count == counts.get("RECONCILED", 0) == uploaded["number_of_remittances"]
            and uploaded["number_of_exceptions"] == 0
            and sum(counts.values()) == n
        )
        calls.sort()
        result = {
            "database": "postgresql",
            "cores": os.cpu_count(),
            "disbursements": n,
            "call_size": args.call_size,
            "fail_share": args.fail_share,
            "end_to_end_s": total,
            "target_s": TARGET_S,
            "within_target": total <= TARGET_S,
            "phases": phases,
            "steps": steps,
            "create_call_s": {"p50": round(calls[len(calls) // 2], 3), "max": round(calls[-1], 3)},
            "statement_bytes": len(data),
            "upload": uploaded,
            "statuses": counts,
            "envelope": {"shipped": status.shipped_count, "reconciled": status.reconciled_count},
            "consistent": ok,
            "load_average_1m": {"start": round(load_before[0], 1), "end": round(os.getloadavg()[0], 1)},
            "peak_memory": memory,
        }
        print(json.dumps(result, indent=1), flush=True)
        result["one_at_a_time"] = one_at_a_time(ws, partner, n, args.sample, steps["disburse"]["seconds"])
        result["openg2p_beat"] = openg2p_beat(n, args.call_size)
        print(json.dumps({k: result[k] for k in ("one_at_a_time", "openg2p_beat")}, indent=1))
        if n >= 1_000_000:
            RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    finally:
        stop_server(api)
        stop_server(sim)
        ws.close()


if __name__ == "__main__":
    main()
