"""Merchant context: maps (psp, local merchant, shop, currency) to the global merchant and its fee rules.

Optional columns (empty or absent: 0): `fee_percent`, `fee_fixed`, `dispute_fee` (major units, charged per
chargeback), `reserve_percent` (rolling reserve taken from each capture) and `reserve_days` (0 to
MAX_RESERVE_DAYS; after them `ledger.reserves` gives the reserve back; 0 keeps a reserve until released).
A `reserve_percent` above 0 needs `reserve_days` above 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from ops_pipeline import audit
from ops_pipeline.errors import InvalidInput
from ops_pipeline.lake.tables import MERCHANT_CONTEXT
from ops_pipeline.ledger.reading import read_table
from ops_pipeline.money import currency_exponents, to_minor
from ops_pipeline.workspace import Workspace

if TYPE_CHECKING:
    from deltalake import DeltaTable

KEY = ("psp_id", "local_merchant_id", "shop_id", "currency")
COLUMNS = (*KEY, "merchant_id", "balance_shop_id", "fee_percent", "fee_fixed", "dispute_fee",
           "reserve_percent", "reserve_days")
# the optional fields of the operation types, as stored, with their value when absent
DEFAULTS = {"dispute_fee_minor": 0, "reserve_percent_micros": 0, "reserve_days": 0}
MAX_RESERVE_DAYS = 3650
_PERCENT = re.compile(r"^\s*(\d{1,2})(?:\.(\d{0,6}))?\s*$")
_DAYS = re.compile(r"^\s*(\d{1,4})\s*$")


@dataclass(frozen=True)
class LoadResult:
    loaded: int
    replaced: int
    total: int
    version: int


def percent_micros(text: str | None, field: str = "fee_percent") -> int:
    """'2.9' -> 2_900_000 millionths of a percent; 0 <= percent < 100, at most 6 decimals."""
    match = _PERCENT.match(text or "0")
    if not match:
        raise InvalidInput(f"{field}: {text!r} is not a percentage from 0 to 99.999999")
    return int(match.group(1)) * 1_000_000 + int((match.group(2) or "").ljust(6, "0"))


def reserve_fields(row: dict) -> dict:
    """`reserve_percent` and `reserve_days` checked: days 0 to MAX_RESERVE_DAYS, above 0 with a percent."""
    text = row.get("reserve_days")
    match = _DAYS.match(text or "0")
    if not match or int(match.group(1)) > MAX_RESERVE_DAYS:
        raise InvalidInput(f"reserve_days: {text!r} is not a whole number of days, 0 to {MAX_RESERVE_DAYS}")
    percent, days = percent_micros(row.get("reserve_percent"), "reserve_percent"), int(match.group(1))
    if percent and not days:
        raise InvalidInput(f"reserve_days: {text!r} must be above 0 with reserve_percent "
                           f"{row.get('reserve_percent')!r}")
    return {"reserve_percent_micros": percent, "reserve_days": days}


def _parse_rows(df: pl.DataFrame) -> list[dict]:
    rows, errors = [], []
    exps = currency_exponents()
    for row in df.iter_rows(named=True):
        where = f"row {row['row_number']}"
        try:
            for column in (*KEY, "merchant_id"):
                if not (row[column] or "").strip():
                    raise InvalidInput(f"{column}: value is missing")
            if row["currency"] not in exps:
                raise InvalidInput(
                    f"currency: {row['currency']!r} is not an ISO 4217 currency with minor units"
                )
            rows.append(
                {
                    **{c: row[c].strip() for c in (*KEY, "merchant_id")},
                    "balance_shop_id": (row["balance_shop_id"] or "").strip() or None,
                    "fee_percent_micros": percent_micros(row["fee_percent"]),
                    "fee_fixed_minor": to_minor(row["fee_fixed"] or "0", row["currency"], field="fee_fixed"),
                    "dispute_fee_minor": to_minor(row["dispute_fee"] or "0", row["currency"],
                                                  field="dispute_fee"),
                    **reserve_fields(row),
                }
            )
        except InvalidInput as exc:
            errors.append(f"{where}: {exc}")
    if errors:
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise InvalidInput("merchant context not loaded: " + "; ".join(errors[:5]) + more)
    keys = [tuple(r[c] for c in KEY) for r in rows]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise InvalidInput(
            f"merchant context not loaded: key {dict(zip(KEY, dup, strict=True))} appears twice"
        )
    return rows


def current(ws: Workspace) -> pl.DataFrame:
    """The merchant context in force (latest version of the table)."""
    return from_table(ws.lake.open(MERCHANT_CONTEXT.name))


def from_table(table: DeltaTable | None) -> pl.DataFrame:
    """The context a handle of the table holds (none: empty), with the defaults of fields added later."""
    if table is None:
        return pl.from_arrow(MERCHANT_CONTEXT.schema.empty_table())
    found = pl.from_arrow(table.to_pyarrow_table())
    return found.with_columns(pl.col(c).fill_null(v) if c in found.columns else pl.lit(v, pl.Int64).alias(c)
                              for c, v in DEFAULTS.items())


def load(ws: Workspace, path: Path, replace_all: bool = False, actor: str = "cli") -> LoadResult:
    """Upsert rows by (psp_id, local_merchant_id, shop_id, currency); `replace_all` replaces the whole set.

    All or nothing: any bad row refuses the file with a message naming the row, column and value.
    """
    df = read_table(path, COLUMNS, (*KEY, "merchant_id"))
    new = pl.DataFrame(
        _parse_rows(df),
        schema={
            **{c: pl.String for c in (*KEY, "merchant_id", "balance_shop_id")},
            "fee_percent_micros": pl.Int64,
            "fee_fixed_minor": pl.Int64,
            **dict.fromkeys(DEFAULTS, pl.Int64),
        },
    ).with_columns(loaded_at=pl.lit(datetime.now(UTC)).cast(pl.Datetime("us", "UTC")))
    with ws.lock("merchant_context"):
        old = current(ws)
        kept = old.head(0) if replace_all else old.join(new.select(KEY), on=list(KEY), how="anti")
        replaced = len(old) - len(kept)
        merged = pl.concat([kept, new.select(old.columns)])  # `old` has every column (`current`)
        version = ws.lake.overwrite(MERCHANT_CONTEXT.name, merged.to_arrow())
        with ws.engine.begin() as conn:
            audit.record(
                conn,
                actor=actor,
                entity_type="merchant_context",
                entity_id=path.name,
                action="load",
                before={"rows": len(old)},
                after={
                    "rows": len(merged),
                    "loaded": len(new),
                    "replaced": replaced,
                    "lake_version": version,
                },
            )
    return LoadResult(loaded=len(new), replaced=replaced, total=len(merged), version=version)
