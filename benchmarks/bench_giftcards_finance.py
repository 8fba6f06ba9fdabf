"""Gift-card commissions and invoices speed (issue 13): a month of `--sales` voucher sales (default 10M)
across 1,000 distributors and 200 programs (10 programs per distributor, rules of every kind: percent, flat,
tiered marginal by count with a monthly cap, tiered whole-month by face value, distributor rules and
percents), then the 1,000 invoices with their HTML, PDF and XLSX files. Target: <= 60 s on 2 cores.

The sales go straight into the Delta table `voucher_events` of a new workspace (OPS_TIMEZONE=UTC, embedded
SQLite), the records straight into their tables. Timed, in one process: the month's 30 daily
`commission_lines` partitions computed in one pass (`compute_days`), `issue_month`, `write_month` (files by
one spawned process per core); peak RSS is the main process's high-water mark after them.
Then the floor: one bare DuckDB group-by of the same month's sales (per distributor and program: count, face
value, a percent commission), the least any commission step must read and aggregate.

    .venv/bin/python -m benchmarks.bench_giftcards_finance                   # full size
    .venv/bin/python -m benchmarks.bench_giftcards_finance --sales 200000    # quick

Writes `benchmarks/results/giftcards_finance.json` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = ROOT / "benchmarks" / ".data" / "giftcards_finance"
RESULTS = ROOT / "benchmarks" / "results" / "giftcards_finance.json"
MONTH = date(2026, 11, 1)
PARTIES, PROGRAMS, PER_PARTY = 1_000, 200, 10
TARGET_SECONDS = 60.0
FACES = [50000, 100000, 200000, 500000]


def program_rules(n: int) -> list[dict]:
    kind = n % 4
    if kind == 0:
        return [{"kind": "percent", "percent": "2.5"}]
    if kind == 1:
        return [{"kind": "flat", "flat_amount": "5.00", "cap_per_voucher": "4.00"}]
    if kind == 2:
        return [
            {
                "kind": "tiered",
                "tier_mode": "marginal",
                "cap_per_month": "5000.00",
                "tiers": [
                    {"from_volume": 0, "percent": "1"},
                    {"from_volume": 20, "percent": "1.5"},
                    {"from_volume": 40, "percent": "2"},
                ],
            }
        ]
    return [
        {
            "kind": "tiered",
            "tier_mode": "whole_month",
            "tier_basis": "face_value",
            "tiers": [{"from_volume": 0, "percent": "1"}, {"from_volume": "50000.00", "percent": "2"}],
        }
    ]


def seed_records(ws) -> None:
    from ops_pipeline.db.bulk import insert_rows
    from ops_pipeline.db.schema import gc_assignments, gc_parties, gc_programs

    now = datetime.now(UTC)
    book = {
        "status": "active",
        "version": 1,
        "created_by": "bench",
        "created_at": now,
        "updated_by": "bench",
        "updated_at": now,
    }
    with ws.engine.begin() as conn:
        insert_rows(
            conn,
            gc_programs,
            [
                {
                    "program_id": f"P{p:03d}",
                    "name": f"Program {p}",
                    "currency": "INR",
                    "restriction_state": "pushed",
                    "restriction_detail": None,
                    "restriction_at": None,
                    "details": {"commission_rules": program_rules(p)},
                    **book,
                }
                for p in range(PROGRAMS)
            ],
        )
        insert_rows(
            conn,
            gc_parties,
            [
                {
                    "party_id": f"D{d:04d}",
                    "kind": "distributor",
                    "name": f"Distributor {d}",
                    "wallet_account_id": f"D{d:04d}",
                    "wallet_currency": "INR",
                    "details": {},
                    **book,
                }
                for d in range(PARTIES)
            ],
        )
        rows = []
        for d in range(PARTIES):
            for k in range(PER_PARTY):
                n = d * PER_PARTY + k
                details = {
                    "commission_percent": "1.75" if n % 5 == 0 else "0",
                    "commission_rules": [{"kind": "flat", "flat_amount": "3.00"}] if n % 7 == 0 else [],
                }
                rows.append(
                    {
                        "party_id": f"D{d:04d}",
                        "program_id": f"P{(d * 7 + k * 20) % PROGRAMS:03d}",
                        "starts_on": date(2026, 1, 1),
                        "ends_on": None,
                        "details": details,
                        **book,
                    }
                )
        insert_rows(conn, gc_assignments, rows)


def write_sales(ws, sales: int) -> None:
    import polars as pl
    from deltalake import write_deltalake

    from ops_pipeline.lake.tables import VOUCHER_EVENTS

    def draw(seed: int, high: int) -> pl.Expr:  # deterministic pseudo-random integers in [0, high)
        return (pl.col("n").hash(seed) % high).cast(pl.Int64)

    start = datetime.combine(MONTH, datetime.min.time(), UTC)
    df = pl.DataFrame({"n": pl.int_range(sales, eager=True)}).with_columns(
        party=draw(1, PARTIES),
        k=draw(2, PER_PARTY),
        face=pl.lit(pl.Series(FACES)).get(draw(3, len(FACES))),
        s=draw(4, 30 * 86_400),
    )
    df = df.select(
        event_id=pl.format("E{}", pl.col("n")),
        voucher_id=pl.format("GV-{}", pl.col("n")),
        program_id=pl.format(
            "P{}", ((pl.col("party") * 7 + pl.col("k") * 20) % PROGRAMS).cast(pl.String).str.zfill(3)
        ),
        event=pl.lit("issued"),
        from_status=pl.lit(None, pl.String),
        to_status=pl.lit("distributed"),
        currency=pl.lit("INR"),
        face_value_minor=pl.col("face"),
        price_paid_minor=pl.col("face") * 98 // 100,
        holder_id=pl.format("D{}", pl.col("party").cast(pl.String).str.zfill(4)),
        actor=pl.lit("bench"),
        reason=pl.lit(None, pl.String),
        event_at=pl.lit(start) + pl.duration(seconds=pl.col("s")),
    )
    df = df.with_columns(event_date=pl.col("event_at").dt.date())
    write_deltalake(
        ws.lake.table_uri(VOUCHER_EVENTS.name),
        df.to_arrow().cast(VOUCHER_EVENTS.schema),
        mode="overwrite",
        partition_by=["event_date"],
    )


def floor(ws) -> float:
    from ops_pipeline.lake.tables import VOUCHER_EVENTS

    began = time.perf_counter()
    with ws.lake.connect(VOUCHER_EVENTS.name) as con:
        con.sql(f"""CREATE TEMP TABLE floor AS
            SELECT holder_id, program_id, count(*) AS sales, sum(face_value_minor) AS face,
                   sum(round(face_value_minor * 0.025)) AS commission
            FROM lake_{VOUCHER_EVENTS.name}
            WHERE event_date >= DATE '{MONTH}' AND event_date < DATE '{MONTH + timedelta(days=30)}'
            GROUP BY ALL""")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=10_000_000)
    args = parser.parse_args()
    shutil.rmtree(DATA, ignore_errors=True)
    os.environ.update({"OPS_HOME": str(DATA), "OPS_TIMEZONE": "UTC"})
    for name in ("OPS_DATABASE_URL", "OPS_LAKE_URI"):
        os.environ.pop(name, None)
    from ops_pipeline.giftcards import commission_lines, invoice_files, invoices
    from ops_pipeline.workspace import Workspace

    ws = Workspace.from_env()
    ws.init()
    seed_records(ws)
    began = time.perf_counter()
    write_sales(ws, args.sales)
    print(f"data: {args.sales:,} sales written in {time.perf_counter() - began:.1f} s", flush=True)

    timings = {}
    began = time.perf_counter()
    month = commission_lines.compute_days(ws, MONTH, MONTH + timedelta(days=29))
    timings["commission_lines_month_s"] = time.perf_counter() - began
    t = time.perf_counter()
    numbers = invoices.issue_month(ws, MONTH, "bench", on=date(2026, 12, 1))
    timings["issue_month_s"] = time.perf_counter() - t
    t = time.perf_counter()
    documents = invoice_files.write_month(ws, MONTH)
    timings["write_files_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    untied = invoices.untied(ws, MONTH)
    timings["floor_groupby_s"] = floor(ws)
    result = {
        "sales": args.sales,
        "distributors": PARTIES,
        "programs": PROGRAMS,
        "cores": os.cpu_count(),
        "lines": month.sales,
        "commission_minor": month.commission_minor,
        "invoices": len(numbers),
        "documents_with_files": documents,
        "untied": len(untied),
        **{k: round(v, 2) for k, v in timings.items()},
        "vs_floor": round(timings["commission_lines_month_s"] / timings["floor_groupby_s"], 1),
        "peak_rss_mib": round(peak / (1 << 20)),
        "target_s": TARGET_SECONDS,
        "passed": timings["total_s"] <= TARGET_SECONDS and not untied,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    ws.close()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if args.sales == 10_000_000:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
