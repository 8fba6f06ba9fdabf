"""A deterministic sample world: merchants on several PSPs and currencies (some with a dispute fee, one or
two with a rolling reserve), a month of operations of every type (demo/operations.py), late
reconciliations and a sprinkle of bad rows, as daily CO and RO files."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from ops_pipeline.demo.operations import Operations
from ops_pipeline.lake.tables import INPUT_COLUMNS
from ops_pipeline.ledger.merchants import COLUMNS as MERCHANT_COLUMNS
from ops_pipeline.money import exponent

PSPS = ("psp-adyen", "psp-stripe", "psp-checkout", "psp-worldline")
CURRENCIES = (("EUR", 0.55), ("USD", 0.2), ("GBP", 0.12), ("JPY", 0.08), ("BHD", 0.05))
MISMATCH_EVERY = 499  # every 499th operation's RO is one minor unit short of its CO
DISPUTE_FEE = {"EUR": "15.00", "USD": "15.00", "GBP": "12.50", "JPY": "2000", "BHD": "6.000"}
DISPUTE_FEE_SHARE = 0.4  # of the merchants
ROLLING_RESERVES = (("10", "30"), ("5", "14"))  # (percent, days) of one merchant each


@dataclass
class World:
    """Files of the world, in the order they arrive."""

    merchants_file: Path
    late_merchants_file: Path
    days: list[tuple[date, Path, Path]] = field(default_factory=list)  # (day, CO file, RO file)
    operations: int = 0
    bad_rows: int = 0


def _write(path: Path, columns, rows) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def _shops(rng: random.Random, merchants: int) -> list[tuple[str, ...]]:
    """Merchant context rows (MERCHANT_COLUMNS): one to three shops per merchant, one currency each."""
    chosen = rng.sample(range(1, merchants + 1), min(merchants, len(ROLLING_RESERVES)))
    rolling = dict(zip(chosen, ROLLING_RESERVES, strict=False))
    shops = []
    for m in range(1, merchants + 1):
        currency = rng.choices([c for c, _ in CURRENCIES], [w for _, w in CURRENCIES])[0]
        dispute_fee = DISPUTE_FEE[currency] if rng.random() < DISPUTE_FEE_SHARE else "0"
        for s in range(rng.choice((1, 1, 2, 3))):
            psp = rng.choice(PSPS)
            fee_percent = rng.choice(("1.4", "1.9", "2.5", "2.9", "0"))
            fee_fixed = "0" if currency == "JPY" else rng.choice(("0", "0.10", "0.25"))
            if currency == "BHD" and fee_fixed != "0":
                fee_fixed = "0.050"
            shops.append((psp, f"lm-{m:04d}", f"shop-{m:04d}-{s}", currency, f"MER-{m:04d}", f"bs-{m:04d}",
                          fee_percent, fee_fixed, dispute_fee, *rolling.get(m, ("0", "0"))))
    return shops


def build_world(folder: Path, operations: int, merchants: int, seed: int, start: date) -> World:
    """Write merchant context and 30 days of CO/RO files under `folder`."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    shops = _shops(rng, merchants)
    late = shops[-3:]  # their context arrives after their first operations: quarantined, then reprocessed
    world = World(
        _write(folder / "merchants.csv", MERCHANT_COLUMNS, shops[:-3]),
        _write(folder / "merchants_late.csv", MERCHANT_COLUMNS, late),
    )
    made = Operations(rng, shops, late)
    days = 30
    per_day = max(1, operations // days)
    pending_ro: dict[int, list[list[str]]] = {}
    serial = 0
    for d in range(days):
        day = start + timedelta(days=d)
        co_rows = []
        for _ in range(per_day):
            serial += 1
            at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=rng.randrange(86400))
            exact = serial % MISMATCH_EVERY != 0  # else its RO has another amount
            row, ro_day = made.make(f"op-{serial:09d}", at, d, exact)
            co_rows.append(row)
            if ro_day is not None:
                ro_at = at + timedelta(days=ro_day - d)
                ro_row = [*row[:5], ro_at.isoformat().replace("+00:00", "Z"), *row[6:]]
                pending_ro.setdefault(ro_day, []).append(ro_row if exact else _nudged(ro_row))
        world.bad_rows += _spoil(rng, co_rows, serial)
        world.operations += len(co_rows)
        co = _write(folder / f"co_{day:%Y%m%d}.csv", INPUT_COLUMNS, co_rows)
        ro = _write(folder / f"ro_{day:%Y%m%d}.csv", INPUT_COLUMNS, pending_ro.pop(d, []))
        world.days.append((day, co, ro))
    return world


def _nudged(row: list[str]) -> list[str]:
    """The row with its amount one minor unit lower (higher when that would make it zero)."""
    unit = Decimal(1).scaleb(-exponent(row[4]))
    amount = Decimal(row[3])
    return [*row[:3], str(amount + unit if amount == unit else amount - unit), *row[4:]]


def _spoil(rng: random.Random, rows: list[list[str]], serial: int) -> int:
    """Append a few bad rows of every kind the ledger must quarantine."""
    good = next((r for r in rows if r[2] == "capture"), rows[0])  # a day of one row may have none
    bad = [
        [f"bad-{serial}-1", "r", "capture", "-12.00", "EUR", good[5], *good[6:]],
        [f"bad-{serial}-2", "r", "capture", "10.00", "XYZ", good[5], *good[6:]],
        [f"bad-{serial}-3", "r", "dispute", "10.00", good[4], good[5], *good[6:]],
        [f"bad-{serial}-4", "r", "capture", "10.00", good[4], "2026-02-30T10:00:00Z", *good[6:]],
        [f"bad-{serial}-5", "r", "capture", "10.12345", good[4], good[5], *good[6:]],
        [good[0], good[1], good[2], str(Decimal(good[3]) + 1), *good[4:]],  # conflicting duplicate
    ]
    chosen = rng.sample(bad, rng.choice((0, 1, 2)))
    rows.extend(chosen)
    return len(chosen)
