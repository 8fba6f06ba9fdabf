"""What is owed to a principal (issue 13): `obligations.compute` over a period of many redeemed vouchers.

`--vouchers` vouchers of one principal's program (face values 500.00 and 1000.00, 9 in 10 redeemed in the
period) are bulk-inserted into a new workspace (not timed); then `compute` runs twice: the first makes the
obligation, the second finds it (idempotent: it still sums the redemptions to see whether they moved).
A payment job computes the amount once more when it validates, so this is also its cost.

    .venv/bin/python -m benchmarks.bench_obligations                       # SQLite, 1,000,000 vouchers
    .venv/bin/python -m benchmarks.bench_obligations --database-url postgresql+psycopg2://...

Writes `benchmarks/results/obligations_<dialect>.json` and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 50_000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vouchers", type=int, default=1_000_000)
    p.add_argument("--database-url", help="default: SQLite in a temporary OPS_HOME")
    cfg = p.parse_args(argv)

    from ops_pipeline.db.bulk import insert_rows
    from ops_pipeline.db.schema import gc_vouchers
    from ops_pipeline.giftcards import obligations
    from ops_pipeline.settings import Settings
    from ops_pipeline.workspace import Workspace
    from tests import giftcard_samples as samples

    with tempfile.TemporaryDirectory(prefix="bench-obligations-") as home:
        env = {"OPS_HOME": home, **({"OPS_DATABASE_URL": cfg.database_url} if cfg.database_url else {})}
        ws = Workspace(Settings.from_env(env))
        ws.init()
        samples.seed(ws)
        now = datetime.now(UTC)
        started = time.perf_counter()
        for first in range(0, cfg.vouchers, BATCH):
            rows = [{"voucher_id": f"GV-BENCH-{i:012d}", "program_id": samples.PROGRAM["program_id"],
                     "currency": "INR", "face_value_minor": (50_000, 100_000)[i % 2], "price_paid_minor": 0,
                     "holder_id": "D-GIFTLY", "status": "redeemed" if i % 10 else "distributed",
                     "expires_at": now + timedelta(days=300), "issued_at": now, "distributed_at": now,
                     "redeemed_at": now - timedelta(seconds=i % 3600), "expired_at": None,
                     "cancelled_at": None, "version": 2, "updated_by": "bench", "updated_at": now}
                    for i in range(first, min(cfg.vouchers, first + BATCH))]
            with ws.engine.begin() as conn:
                insert_rows(conn, gc_vouchers, rows)
        loaded = time.perf_counter() - started
        day = datetime.now(ws.settings.tz).date()
        times = []
        for _ in range(2):
            started = time.perf_counter()
            [made] = obligations.compute(ws, "P-CAFE-01", day - timedelta(days=1), day, "bench")
            times.append(time.perf_counter() - started)
        dialect = ws.engine.dialect.name
        ws.close()
    result = {"dialect": dialect, "vouchers": cfg.vouchers, "redeemed": made["vouchers"],
              "amount": made["amount"], "load_seconds": round(loaded, 1),
              "compute_seconds": round(times[0], 2), "compute_again_seconds": round(times[1], 2)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"obligations_{dialect}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
