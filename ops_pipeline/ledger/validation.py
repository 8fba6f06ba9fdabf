"""Validate operation rows: pandera for column rules, then amounts, dates and merchant context.

Every rejected row gets a `reason_code` and a `reason` naming the column and the value.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from ops_pipeline.ledger import OPERATION_TYPES
from ops_pipeline.money import currency_exponents

MAX_EXPONENT = 4
_NUMBER = r"^\s*[+-]?\d{1,15}(\.\d*)?\s*$"
_ISO_DATE = r"^\s*\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?\s*$"
REQUIRED = ("falcon_operation_id", "type", "amount", "currency", "operation_date", "psp_id",
            "local_merchant_id", "shop_id")
MERCHANT_KEY = ("psp_id", "local_merchant_id", "shop_id", "currency")
# The usual shapes (ASCII only) that the fast path parses: amounts below 10^14 with at most 4 decimals, UTC.
_SIMPLE_AMOUNT = r"^[0-9]{1,14}(\.[0-9]{0,4})?$"
_SIMPLE_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$"


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
    text = {c: pa.Column(str, nullable=c not in REQUIRED)
            for c in ("falcon_operation_id", "external_reference", "psp_id", "local_merchant_id", "shop_id")}
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
            for index, check, column, value in cases.select("index", "check", "column", "failure_case")
            .iter_rows()
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


def _with_context(df: pl.DataFrame, merchants: pl.DataFrame) -> pl.DataFrame:
    """Add the currency's exponent, scale and frac_div and the merchant context fields (null when unknown).

    A left join on the four key columns. (A faster lookup by gathering context values with null indices
    for unknown merchants made polars 2.1 panic later on the gathered strings.)
    """
    exponent = pl.col("currency").replace_strict(currency_exponents(), default=None, return_dtype=pl.Int64)
    return (
        df.join(merchants, on=list(MERCHANT_KEY), how="left", maintain_order="left")
        .with_columns(exponent=exponent)
        .with_columns(
            scale=pl.lit(10, pl.Int64).pow(pl.col("exponent")),
            frac_div=pl.lit(10, pl.Int64).pow(MAX_EXPONENT - pl.col("exponent")),
        )
    )


def _parse_general(df: pl.DataFrame, tz: str) -> pl.DataFrame:
    """Add `decimals`, `amount_minor` and `operation_ts`, parsed from any text as the rules define them."""
    text = pl.col("amount").str.strip_chars().str.strip_prefix("+")
    frac = text.str.extract(r"\.(\d*)$", 1).fill_null("").str.strip_chars_end("0")
    return (
        df.with_columns(
            decimals=frac.str.len_chars(),
            whole=text.str.extract(r"^(\d*)", 1).str.replace(r"^$", "0").cast(pl.Int64, strict=False),
            frac4=frac.str.slice(0, MAX_EXPONENT).str.pad_end(MAX_EXPONENT, "0").cast(pl.Int64, strict=False),
            operation_ts=parse_timestamp(pl.col("operation_date"), tz),
        )
        .with_columns(amount_minor=pl.col("whole") * pl.col("scale") + pl.col("frac4") // pl.col("frac_div"))
        .drop("whole", "frac4")
    )


def _parse_simple(df: pl.DataFrame) -> pl.DataFrame:
    """Add `amount_minor` and `operation_ts` to rows in the usual shape, and `_odd`: rows this cannot settle.

    With the amount as an integer of 10^-4 units (e4): whole * scale + frac4 // frac_div == e4 // frac_div,
    and the amount has more decimals than allowed exactly when e4 is not a multiple of frac_div. Rows not
    in the usual shape, with too many decimals or with an impossible date are `_odd`: the general parser
    decides them (and words their reasons).
    """
    date = pl.col("operation_date")
    simple = pl.col("amount").str.contains(_SIMPLE_AMOUNT) & date.str.contains(_SIMPLE_DATE)
    e4 = pl.col("amount").cast(pl.Decimal(18, MAX_EXPONENT), strict=False).to_physical().cast(pl.Int64)
    ts = date.str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ", strict=False)
    return df.with_columns(_e4=pl.when(simple).then(e4), operation_ts=pl.when(simple).then(ts)).with_columns(
        amount_minor=pl.col("_e4") // pl.col("frac_div"),
        _odd=pl.col("operation_ts").is_null() | (pl.col("_e4") % pl.col("frac_div") != 0).fill_null(False),
    ).drop("_e4")


def validate_operations(
    df: pl.DataFrame, merchants: pl.DataFrame, tz: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Check every row: (rows with `valid`, `amount_minor`, `operation_ts` and merchant fields, rejections).

    Rows in the usual shape (plain amount with at most 4 decimals, `YYYY-MM-DDTHH:MM:SSZ`) take a fast path
    that gives the same values; every other row goes through the general parser. Rows are flagged, not
    filtered: a filter would copy millions of rows to drop a few.
    """
    failures = [_schema_failures(df)]
    parsed = _parse_simple(_with_context(df, merchants))
    odd = _parse_general(parsed.filter("_odd"), tz)
    known = pl.col("exponent").is_not_null() & pl.col("amount").is_not_null()
    failures.append(
        _derived(
            odd,
            known & (pl.col("decimals") > pl.col("exponent")) & pl.col("amount").str.contains(_NUMBER),
            "too_many_decimals",
            pl.format("amount: '{}' has {} decimals, {} allows {}", pl.col("amount").str.strip_chars(),
                      "decimals", "currency", "exponent"),
        )
    )
    failures.append(
        _derived(
            odd,
            pl.col("operation_ts").is_null() & pl.col("operation_date").str.contains(_ISO_DATE),
            "bad_date",
            pl.format("operation_date: '{}' is not a valid date-time", "operation_date"),
        )
    )
    complete_key = pl.all_horizontal(pl.col(c).is_not_null() for c in (*MERCHANT_KEY, "exponent"))
    failures.append(
        _derived(
            parsed,
            complete_key & pl.col("merchant_id").is_null(),
            "unknown_merchant",
            pl.format("merchant context: no row for psp_id='{}', local_merchant_id='{}', shop_id='{}', "
                      "currency='{}'", *MERCHANT_KEY),
        )
    )
    rejects = combine_reasons(pl.concat(failures))
    if len(odd):  # the general parser's values into their rows (odd rows are in the order of `parsed`)
        at = parsed.select(pl.arg_where("_odd")).to_series()
        parsed = parsed.with_columns(parsed[c].scatter(at, odd[c]) for c in ("amount_minor", "operation_ts"))
    valid = ~pl.col("row_number").is_in(rejects["row_number"].implode())
    return parsed.drop("_odd").with_columns(valid=valid), rejects


def _derived(df: pl.DataFrame, condition: pl.Expr, code: str, message: pl.Expr) -> pl.DataFrame:
    return df.filter(condition).select(
        "row_number", pl.lit(code).alias("reason_code"), message.alias("reason")
    )


def combine_reasons(reasons: pl.DataFrame) -> pl.DataFrame:
    """One row per rejected input row: the most basic reason code first, every message joined."""
    rank = {code: i for i, code in enumerate(PRIORITY)}
    return (
        reasons.with_columns(
            rank=pl.col("reason_code").replace_strict(rank, default=len(rank), return_dtype=pl.Int64)
        )
        .sort("row_number", "rank")
        .group_by("row_number", maintain_order=True)
        .agg(pl.col("reason_code").first(), pl.col("reason").str.join("; "))
    )
