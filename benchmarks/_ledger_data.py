"""Deterministic synthetic ledger data: a merchant context and operation files, vectorized with polars.

The same seed gives the same rows. Shops get skewed traffic (a few busy shops, a long tail), 85% of the
operations are captures and the rest refunds, amounts are decimal text with the currency's decimals, dates
are ISO 8601 text in UTC and three rows in ten thousand are bad (unknown merchant, negative amount, or
an impossible date).
"""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl

from ops_pipeline.lake.tables import INPUT_COLUMNS
from ops_pipeline.money import currency_exponents

# currency -> share of shops (percent)
CURRENCIES = {"EUR": 40, "USD": 22, "GBP": 10, "JPY": 8, "CHF": 5, "SEK": 4, "PLN": 4, "BHD": 4, "KWD": 3}
PSPS = ("adyen", "stripe", "worldline", "checkout", "nexi", "paysafe")
FEE_PERCENTS = ("0", "1.2", "1.4", "1.75", "2.5", "2.9", "3.25")
MERCHANT_COLUMNS = ("psp_id", "local_merchant_id", "shop_id", "currency", "merchant_id", "balance_shop_id",
                    "fee_percent", "fee_fixed")
REFUND_PERCENT = 15
BAD_EVERY = 10_007  # about one bad row in ten thousand
START = pl.datetime(2026, 1, 1, time_zone="UTC")
DAYS = 120


def _draw(values: list, n: int, seed: int) -> pl.Series:
    """`n` values drawn uniformly, with replacement, from `values`."""
    return pl.Series(values).sample(n, with_replacement=True, seed=seed)


def merchant_context(shops: int = 2000, seed: int = 7) -> pl.DataFrame:
    """`shops` merchant context rows (text columns as `ops-pipeline merchants load` reads them)."""
    exps = currency_exponents()
    currencies = [c for c, share in CURRENCIES.items() for _ in range(share)]
    i = pl.int_range(0, shops, eager=True)
    df = pl.DataFrame({
        "i": i,
        "psp_id": _draw(list(PSPS), shops, seed),
        "currency": _draw(currencies, shops, seed + 1),
        "fee_percent": _draw(list(FEE_PERCENTS), shops, seed + 2),
        "fixed": _draw([0, 0, 10, 25, 30], shops, seed + 3),
    })
    scale = pl.col("currency").replace_strict(exps, return_dtype=pl.Int64)
    return df.select(
        "psp_id",
        local_merchant_id=pl.format("lm-{}", (pl.col("i") // 3 + 10_000).cast(pl.String)),
        shop_id=pl.format("shop-{}", (pl.col("i") + 100_000).cast(pl.String)),
        currency="currency",
        merchant_id=pl.format("M{}", (pl.col("i") * 7 // 20 + 1000).cast(pl.String)),  # ~3 shops per merchant
        balance_shop_id=pl.when(pl.col("i") % 4 == 0).then(pl.format("bs-{}", pl.col("i").cast(pl.String))),
        fee_percent="fee_percent",
        fee_fixed=_decimal_text(pl.col("fixed") * 10 ** scale.clip(0, 2) // 100, scale),
    )


def write_merchants(path: Path, context: pl.DataFrame) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MERCHANT_COLUMNS)
        writer.writerows(context.select(MERCHANT_COLUMNS).iter_rows())
    return path


def _decimal_text(minor: pl.Expr, exponent: pl.Expr) -> pl.Expr:
    """Integer minor units as decimal text with exactly `exponent` decimals ('12.30', '1500', '0.125')."""
    scale = pl.lit(10, pl.Int64).pow(exponent)
    frac = (minor % scale + scale).cast(pl.String).str.slice(1)
    return pl.when(exponent == 0).then(minor.cast(pl.String)).otherwise(
        pl.concat_str([(minor // scale).cast(pl.String), pl.lit("."), frac])
    )


def operations(context: pl.DataFrame, first_id: int, n: int, seed: int) -> pl.DataFrame:
    """`n` operations with ids `op-<first_id ...>` over the shops of `context` (text columns)."""
    shops = len(context)
    # busy shops first: shop k gets weight ~ 2000 / (k + 1), at least 1
    weighted = pl.int_range(0, shops, eager=True).repeat_by(
        pl.Series([max(1, 2000 // (k + 1)) for k in range(shops)])
    ).explode()
    exps = currency_exponents()
    ops = pl.DataFrame({
        "id": pl.int_range(first_id, first_id + n, eager=True),
        "shop": _draw(weighted.to_list(), n, seed),
        "refund": _draw(list(range(100)), n, seed + 1) < REFUND_PERCENT,
        "units": _draw(list(range(50, 20_000)), n, seed + 2) * _draw([1, 1, 1, 2, 5, 10, 25], n, seed + 3),
        "second": _draw(list(range(DAYS * 86_400)), n, seed + 4),
    }).join(context.with_row_index("shop").with_columns(pl.col("shop").cast(pl.Int64)), on="shop")
    exponent = pl.col("currency").replace_strict(exps, return_dtype=pl.Int64)
    minor = pl.col("units") * 10 ** exponent.clip(0, 2) // 100 + 1
    bad = pl.col("id") % BAD_EVERY
    out = ops.sort("id").select(
        falcon_operation_id=pl.concat_str([pl.lit("op-"),
                                           (pl.col("id") + 10**12).cast(pl.String).str.slice(1)]),
        external_reference=pl.concat_str([pl.col("psp_id"), pl.lit("-"), (pl.col("id") * 7919 % 10**10)
                                          .cast(pl.String)]),
        type=pl.when(pl.col("refund")).then(pl.lit("refund")).otherwise(pl.lit("capture")),
        amount=pl.when(bad == 1).then(pl.lit("-5")).otherwise(_decimal_text(minor, exponent)),
        currency="currency",
        operation_date=pl.when(bad == 2).then(pl.lit("2026-02-30T10:00:00Z")).otherwise(
            (START + pl.duration(seconds=pl.col("second"))).dt.to_string("%Y-%m-%dT%H:%M:%SZ")
        ),
        psp_id="psp_id",
        local_merchant_id="local_merchant_id",
        shop_id=pl.when(bad == 3).then(pl.lit("shop-unknown")).otherwise(pl.col("shop_id")),
    )
    return out.select(INPUT_COLUMNS)


def write_operations(path: Path, ops: pl.DataFrame) -> Path:
    ops.write_parquet(path)
    return path
