"""Validate operation rows: pandera for column rules, then amounts, dates and merchant context.

Every rejected row gets a `reason_code` and a `reason` naming the column and the value.
"""

from __future__ import annotations

import polars as pl
import pandera.polars as pa

from ops_pipeline.ledger import OPERATION_TYPES
from ops_pipeline.money import currency_exponents

MAX_EXPONENT = 4
_NUMBER = r"^\s*[+-]?\d{1,15}(\.\d*)?\s*$"
_ISO_DATE = r"^\s*\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?\s*$"
REQUIRED = ("falcon_operation_id", "type", "amount", "currency", "operation_date", "psp_id",
            "local_merchant_id", "shop_id")
MERCHANT_KEY = ("psp_id", "local_merchant_id", "shop_id", "currency")


def _matches(pattern: str, name: str) -> pa.Check:
    return pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).str.contains(pattern)), name=name)


def _one_of(values, name: str) -> pa.Check:
    allowed = list(values)
    return pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).is_in(allowed)), name=name)


def _positive() -> pa.Check:
    """Numbers must be > 0; non-numbers are left to the `decimal_number` check."""

    def check(d):
        text = pl.col(d.key).str.strip_chars()
        is_number = text.str.contains(_NUMBER)
        return d.lazyframe.select(~is_number | (~text.str.starts_with("-") & text.str.contains(r"[1-9]")))

    return pa.Check(check, name="positive")


def operation_schema() -> pa.DataFrameSchema:
    text = {c: pa.Column(str, nullable=c not in REQUIRED) for c in ("falcon_operation_id", "external_reference",
                                                                    "psp_id", "local_merchant_id", "shop_id")}
    return pa.DataFrameSchema(
        {
            **text,
            "type": pa.Column(str, checks=_one_of(OPERATION_TYPES, "known_type")),
            "amount": pa.Column(str, checks=[_matches(_NUMBER, "decimal_number"), _positive()]),
            "currency": pa.Column(str, checks=_one_of(currency_exponents(), "known_currency")),
            "operation_date": pa.Column(str, checks=_matches(_ISO_DATE, "iso_date")),
        },
        strict=False,
    )


# (check name) -> reason code and message template; {c} is the column, {v} the value as received.
_MESSAGES = {
    "not_nullable": ("missing_value", "{c}: value is missing"),
    "known_type": ("unknown_type", "{c}: {v!r} is not one of " + ", ".join(OPERATION_TYPES)),
    "known_currency": ("unknown_currency", "{c}: {v!r} is not an ISO 4217 currency with minor units"),
    "decimal_number": ("bad_amount", "{c}: {v!r} is not a decimal number"),
    "positive": ("non_positive_amount", "{c}: {v!r} must be positive"),
    "iso_date": ("bad_date", "{c}: {v!r} is not an ISO 8601 date or date-time"),
}
PRIORITY = ["missing_value", "unknown_type", "unknown_currency", "bad_amount", "non_positive_amount",
            "too_many_decimals", "bad_date", "unknown_merchant", "conflicting_duplicate"]


def _schema_failures(df: pl.DataFrame) -> pl.DataFrame:
    try:
        operation_schema().validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases.filter(pl.col("index").is_not_null())
        row_numbers = df["row_number"]  # pandera reports positions; rows may be sparse (reprocess)
        rows = [
            (row_numbers[int(index)], *_describe(check, column, value))
            for index, check, column, value in cases.select("index", "check", "column", "failure_case").iter_rows()
        ]
        return reasons_frame(rows)
    return reasons_frame([])


def _describe(check: str, column: str, value) -> tuple[str, str]:
    key = check.split("(")[0]
    code, template = _MESSAGES.get(key, ("invalid_value", "{c}: {v!r} fails check " + check))
    return code, template.format(c=column, v=value)


def reasons_frame(rows: list[tuple[int, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"row_number": pl.Int64, "reason_code": pl.String, "reason": pl.String},
                        orient="row")


def parse_timestamp(expr: pl.Expr, tz: str) -> pl.Expr:
    """ISO 8601 text to a UTC timestamp; values without an offset are local to `tz`."""
    text = expr.str.strip_chars().str.replace(r"Z$", "+00:00").str.replace(" ", "T")
    with_offset = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", time_zone="UTC", strict=False)
    naive = pl.coalesce(
        text.str.to_datetime(fmt, time_unit="us", strict=False)
        for fmt in ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
    )
    local = naive.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    return pl.coalesce(with_offset.dt.cast_time_unit("us"), local.dt.convert_time_zone("UTC"))


def currencies_frame() -> pl.DataFrame:
    exps = currency_exponents()
    return pl.DataFrame(
        {
            "currency": list(exps),
            "exponent": list(exps.values()),
            "scale": [10**e for e in exps.values()],
            "frac_div": [10 ** (MAX_EXPONENT - e) for e in exps.values()],
        },
        schema={"currency": pl.String, "exponent": pl.Int64, "scale": pl.Int64, "frac_div": pl.Int64},
    )


def validate_operations(df: pl.DataFrame, merchants: pl.DataFrame, tz: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split rows into (valid rows with `amount_minor`, `operation_ts` and merchant fields, rejections)."""
    failures = [_schema_failures(df)]
    text = pl.col("amount").str.strip_chars().str.strip_prefix("+")
    frac = text.str.extract(r"\.(\d*)$", 1).fill_null("").str.strip_chars_end("0")
    parsed = (
        df.join(currencies_frame(), on="currency", how="left")
        .join(merchants, on=list(MERCHANT_KEY), how="left")
        .with_columns(
            decimals=frac.str.len_chars(),
            whole=text.str.extract(r"^(\d*)", 1).str.replace(r"^$", "0").cast(pl.Int64, strict=False),
            frac4=frac.str.slice(0, MAX_EXPONENT).str.pad_end(MAX_EXPONENT, "0").cast(pl.Int64, strict=False),
            operation_ts=parse_timestamp(pl.col("operation_date"), tz),
        )
        .with_columns(amount_minor=pl.col("whole") * pl.col("scale") + pl.col("frac4") // pl.col("frac_div"))
    )
    known = pl.col("exponent").is_not_null() & pl.col("amount").is_not_null()
    failures.append(
        _derived(
            parsed,
            known & (pl.col("decimals") > pl.col("exponent")) & pl.col("amount").str.contains(_NUMBER),
            "too_many_decimals",
            pl.format("amount: '{}' has {} decimals, {} allows {}", pl.col("amount").str.strip_chars(),
                      "decimals", "currency", "exponent"),
        )
    )
    failures.append(
        _derived(
            parsed,
            pl.col("operation_ts").is_null() & pl.col("operation_date").str.contains(_ISO_DATE),
            "bad_date",
            pl.format("operation_date: '{}' is not a valid date-time", "operation_date"),
        )
    )
    complete_key = pl.all_horizontal(pl.col(c).is_not_null() for c in MERCHANT_KEY) & pl.col("exponent").is_not_null()
    failures.append(
        _derived(
            parsed,
            complete_key & pl.col("merchant_id").is_null(),
            "unknown_merchant",
            pl.format("merchant context: no row for psp_id='{}', local_merchant_id='{}', shop_id='{}', currency='{}'",
                      *MERCHANT_KEY),
        )
    )
    rejects = combine_reasons(pl.concat(failures))
    valid = parsed.join(rejects.select("row_number"), on="row_number", how="anti")
    return valid, rejects


def _derived(df: pl.DataFrame, condition: pl.Expr, code: str, message: pl.Expr) -> pl.DataFrame:
    return df.filter(condition).select(
        "row_number", pl.lit(code).alias("reason_code"), message.alias("reason")
    )


def combine_reasons(reasons: pl.DataFrame) -> pl.DataFrame:
    """One row per rejected input row: the most basic reason code first, every message joined."""
    rank = {code: i for i, code in enumerate(PRIORITY)}
    return (
        reasons.with_columns(rank=pl.col("reason_code").replace_strict(rank, default=len(rank), return_dtype=pl.Int64))
        .sort("row_number", "rank")
        .group_by("row_number", maintain_order=True)
        .agg(pl.col("reason_code").first(), pl.col("reason").str.join("; "))
    )
