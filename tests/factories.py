"""Small input files for tests: merchant context and operations in CSV, JSONL or Parquet."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl

from ops_pipeline.lake.tables import INPUT_COLUMNS
from ops_pipeline.ledger.merchants import COLUMNS as MERCHANT_COLUMNS

MERCHANTS = [
    # psp, local merchant, shop, currency, merchant, balance shop, fee %, fee fixed
    ("psp1", "lm1", "s1", "EUR", "M1", "bs1", "2.9", "0.30"),
    ("psp1", "lm2", "s1", "JPY", "M2", "", "3.5", "0"),
    ("psp2", "lm3", "s9", "BHD", "M3", "", "1.25", "0.005"),
    ("psp2", "lm4", "s1", "EUR", "M4", "", "0", "0"),
]
SHOPS = {m[4]: m[:4] for m in MERCHANTS}


def write_merchants(path: Path, rows=MERCHANTS) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(MERCHANT_COLUMNS)
        w.writerows(rows)
    return path


def op(
    op_id: str,
    amount: str,
    merchant: str = "M1",
    type: str = "capture",
    date: str = "2026-11-01T10:00:00Z",
    ref: str | None = None,
    **override,
) -> dict:
    """One operation row for merchant `merchant` of the sample context."""
    psp, lm, shop, currency = SHOPS[merchant]
    row = {
        "falcon_operation_id": op_id,
        "external_reference": ref or f"ref-{op_id}",
        "type": type,
        "amount": amount,
        "currency": currency,
        "operation_date": date,
        "psp_id": psp,
        "local_merchant_id": lm,
        "shop_id": shop,
    }
    row.update(override)
    return row


def write_ops(path: Path, rows: list[dict]) -> Path:
    """Write rows as CSV, JSONL or Parquet (all text columns) depending on the suffix."""
    if path.suffix == ".csv":
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=INPUT_COLUMNS)
            w.writeheader()
            w.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pl.DataFrame(rows, schema={c: pl.String for c in INPUT_COLUMNS}).write_parquet(path)
    return path
