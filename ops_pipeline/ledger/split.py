"""Split rules: how each operation type becomes balance operations (log entries), vectorised in Polars.

Every operation gives one *primary* entry of its own type, with the sign of `SIGNS` (+ credits the
merchant, - debits it), and some give *derived* entries under the same (source, falcon_operation_id):

| type                | entries                                                                        |
|---------------------|--------------------------------------------------------------------------------|
| capture             | +amount; -fee as `psp_fee` (percent + fixed); -reserve as `rolling_reserve`     |
| refund              | -amount                                                                        |
| chargeback          | -amount; -dispute fee as `dispute_fee` (merchant context, fixed per currency)   |
| chargeback_reversal | +amount (the dispute fee is not given back)                                    |
| withdrawal          | -amount                                                                        |
| cashback            | -amount (cashback the merchant funds for its customer)                         |
| reserve             | -amount (moved into the merchant's reserve)                                    |
| reserve_release     | +amount (moved back out of the reserve)                                        |
| fee_adjustment      | the signed amount as given (+ fee given back, - extra fee)                     |

The reserve (`ledger.RESERVE_TYPES`) is part of neither confirmed nor settled money the merchant can use: its
entries take the amount out of the source's balance (confirmed for CO, settled for RO, and so out of
available) and `ledger.reserves` posts a `reserve_expiry` entry giving back what is still reserved once
`reserve_days` have passed. The reserved amount is minus the sum of those entries.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import polars as pl

SIGNS = {
    "capture": 1,
    "refund": -1,
    "chargeback": -1,
    "chargeback_reversal": 1,
    "withdrawal": -1,
    "cashback": -1,
    "reserve": -1,
    "reserve_release": 1,
    "fee_adjustment": 1,
}
SIGNED_TYPES = ("fee_adjustment",)  # types whose amount may be negative (never zero)
DERIVED_TYPES = ("psp_fee", "dispute_fee", "rolling_reserve", "reserve_expiry")
CONTEXT_FIELDS = ("fee_percent_micros", "fee_fixed_minor", "dispute_fee_minor", "reserve_percent_micros")


def percent_of(amount: pl.Expr, percent_micros: pl.Expr) -> pl.Expr:
    """round_half_up(amount x percent_micros / 10^8) for amount >= 0, with amount = hi x 10^8 + lo so that no
    product leaves Int64."""
    return ((amount // 100_000_000) * percent_micros
            + ((amount % 100_000_000) * percent_micros + 50_000_000) // 100_000_000)


def _derived(amount: pl.Expr) -> dict[str, tuple[str, pl.Expr]]:
    """Derived entry type -> (the operation type it comes from, its amount: minus what it takes)."""
    return {
        "psp_fee": ("capture", percent_of(amount, pl.col("fee_percent_micros")) + pl.col("fee_fixed_minor")),
        "rolling_reserve": ("capture", percent_of(amount, pl.col("reserve_percent_micros"))),
        "dispute_fee": ("chargeback", pl.col("dispute_fee_minor")),
    }


def split(new: pl.LazyFrame, source: str, ingest_id: str, recorded_at: datetime) -> list[pl.DataFrame]:
    """Log entries of the new operations: [primary entries, derived entries], each with a UUIDv7 `uuid`.

    `new` holds the valid operations with `amount_minor` (positive, or signed for SIGNED_TYPES) and the
    merchant context's CONTEXT_FIELDS; derived entries of zero are not written.
    """
    amount = pl.col("amount_minor")
    common = dict(source=pl.lit(source), recorded_at=pl.lit(recorded_at).cast(pl.Datetime("us", "UTC")),
                  ingest_id=pl.lit(ingest_id))
    sign = pl.col("type").replace_strict(SIGNS, return_dtype=pl.Int64)
    primary = new.select(pl.exclude("amount_minor"), amount_minor=sign * amount, **common)
    derived = [
        new.filter(pl.col("type") == origin).with_columns(_take=take.fill_null(0))
        .filter(pl.col("_take") != 0)
        .select(pl.exclude("amount_minor", "type", "_take"), amount_minor=-pl.col("_take"), type=pl.lit(kind),
                **common)
        for kind, (origin, take) in _derived(amount).items()
    ]
    primary, *derived = pl.collect_all([primary, *derived])
    derived = pl.concat(derived)
    prefix = uuid7_prefix(recorded_at)
    return [part.with_columns(uuid=uuids(prefix, offset, len(part)))
            for offset, part in ((0, primary), (len(primary), derived))]


def operation_amount_sql(column: str = "amount_minor", type_column: str = "type") -> str:
    """DuckDB SQL giving back an operation's amount as received from its primary entry (undoes SIGNS)."""
    negative = _sql_list(t for t, s in SIGNS.items() if s < 0)
    return f"(CASE WHEN {type_column} IN ({negative}) THEN -{column} ELSE {column} END)"


def primary_sql(type_column: str = "type") -> str:
    """DuckDB SQL: the entry is an operation's primary entry (not a derived one)."""
    return f"{type_column} IN ({_sql_list(SIGNS)})"


def _sql_list(types) -> str:
    return ", ".join(f"'{t}'" for t in types)


def uuid7_prefix(at: datetime) -> str:
    """The first 20 hex digits of a UUIDv7 for time `at`: 48 bits of milliseconds, version, 26 random bits."""
    rand = uuid.uuid4().int
    return (f"{int(at.timestamp() * 1000):012x}{0x7000 | (rand >> 116):04x}"
            f"{0x8000 | ((rand >> 100) & 0x3FFF):04x}")


def uuids(prefix: str, offset: int, n: int) -> pl.Expr:
    """UUIDv7s sharing `prefix` whose last 12 digits count from `offset` (RFC 9562's monotonic counter)."""
    counter = (pl.int_range(offset, offset + n, dtype=pl.Int64) + 10**12).cast(pl.String).str.slice(1)
    return pl.format(f"{prefix[:8]}-{prefix[8:12]}-{prefix[12:16]}-{prefix[16:20]}-{{}}", counter)
