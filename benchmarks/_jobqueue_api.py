"""Open-loop load on `POST /api/job/create`, run as its own process: `_api_load.run` with POST requests.

    python benchmarks/_jobqueue_api.py --port 8000 --rate 200 --duration 60 --token TOKEN

The requests mix job types as ops create them: manual jobs, voucher restriction pushes (UPI VPAs, encrypted
at rest), distributor onboardings and wallet top-ups, in all priorities, some with an expiry; one in ten
carries an idempotency key from a small set, so repeats answer 200 with the live job (no duplicate).
Prints `_api_load.run`'s JSON (latencies from each request's scheduled send time, statuses, rates).
"""

from __future__ import annotations

import copy
import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._api_load import arguments, run_and_print
from ops_pipeline.jobqueue.jobtypes import JOB_TYPES

TYPES = ("manual", "voucher_restriction_push", "distributor_onboarding", "distributor_wallet_topup")


def bodies(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    expiry = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    out = []
    for i in range(n):
        job_type = TYPES[i % len(TYPES)]
        attributes = copy.deepcopy(JOB_TYPES[job_type].example)
        if job_type == "manual":
            attributes = {"title": f"Call the bank about case {i}", "description": "Chargeback question"}
        body = {"type": job_type, "attributes": attributes, "priority": rng.choice(["High", "Medium", "Low"])}
        if i % 3 == 0:
            body["expiresAt"] = expiry
        if i % 10 == 0:
            body["idempotencyKey"] = f"bench-{i % 50}"
        out.append(body)
    return out


def templates(host: str, token: str, n: int, seed: int) -> list[bytes]:
    out = []
    for body in bodies(n, seed):
        data = json.dumps(body).encode()
        head = (f"POST /api/job/create HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
        out.append(head.encode() + data)
    return out


def main() -> None:
    p = arguments(__doc__.splitlines()[0], 200)
    p.add_argument("--token", required=True, help="JWT of a role that creates jobs (ops, internal)")
    args = p.parse_args()
    run_and_print(args, templates(f"{args.host}:{args.port}", args.token, 400, args.seed))


if __name__ == "__main__":
    main()
