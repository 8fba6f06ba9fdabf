"""Validate operation rows: required values, ids, type, currency, amount, date and merchant context.

Every rejected row gets a `reason_code` and a `reason` naming the column and the value. Cheap vectorized
tests flag the rows that may be bad (a few in a normal file); only those are checked rule by rule.

The rules (for the README):
- ids (`falcon_operation_id`, `external_reference`, `psp_id`, `local_merchant_id`, `shop_id`) are at most
  MAX_ID_LENGTH characters and contain no control character (U+0000-U+001F, U+007F-U+009F):
  `id_too_long`, `control_character`.
- amount: ASCII digits with an optional `.` and decimals, at most 15 digits before the point; a leading
  `+` and surrounding spaces or tabs are accepted and ignored (`+10.00` and ` 10.00 ` are 10.00); digits
  of other scripts are refused (`non_ascii_digit`), anything else is `bad_amount`; zero or negative is
  `non_positive_amount` (a `fee_adjustment` may be negative, not zero: `zero_amount`); more decimals than
  the currency has is `too_many_decimals`.
- the rules that depend on earlier operations (a chargeback reversal needs its chargeback, a reserve
  release its reserve) are in `ledger/references.py`.
"""

from __future__ import annotations

import polars as pl

from ops_pipeline.ledger import OPERATION_TYPES
from ops_pipeline.ledger.split import SIGNED_TYPES
from ops_pipeline.money import currency_exponents

MAX_EXPONENT = 4
MAX_ID_LENGTH = 128
ID_COLUMNS = ("falcon_operation_id", "external_reference", "psp_id", "local_merchant_id", "shop_id")
REQUIRED = ("falcon_operation_id", "type", "amount", "currency", "operation_date", "psp_id",
            "local_merchant_id", "shop_id")
MERCHANT_KEY = ("psp_id", "local_merchant_id", "shop_id", "currency")
_BLANK = "[ \t]*"
_NUMBER = rf"^{_BLANK}[+-]?[0-9]{{1,15}}(\.[0-9]*)?{_BLANK}$"
_ISO_DATE = (rf"^{_BLANK}[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}"
             rf"([T ][0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}}(\.[0-9]{{1,9}})?)?)?"
             rf"{_BLANK}(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)?{_BLANK}$")
_CONTROL = r"[\x00-\x1f\x7f-\x9f]"
_OTHER_DIGIT = r"[\p{Nd}&&[^0-9]]"
# The usual shapes (ASCII only) that the fast path parses: amounts below 10^14 with at most 4 decimals, UTC.
_SIMPLE_AMOUNT = r"^[0-9]{1,14}(\.[0-9]{0,4})?$"
_SIMPLE_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$"
PRIORITY = ["missing_value", "control_character", "id_too_long", "unknown_type", "unknown_currency",
            "non_ascii_digit", "bad_amount", "non_positive_amount", "zero_amount", "too_many_decimals",
            "bad_date", "unknown_merchant", "conflicting_duplicate", "no_prior_chargeback",
            "reversal_exceeds_chargeback", "no_prior_reserve", "release_exceeds_reserve"]


def reasons_frame(rows: list[tuple[int, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"row_number": pl.Int64, "reason_code": pl.String, "reason": pl.String},
                        orient="row")


def parse_timestamp(expr: pl.Expr, tz: str) -> pl.Expr:
    """ISO 8601 text to a UTC timestamp; values without an offset are local to `tz`."""
    text = expr.str.strip_chars(" \t").str.replace(r"Z$", "+00:00").str.replace(" ", "T")
    with_offset = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", time_zone="UTC", strict=False)
    naive = pl.coalesce(
        text.str.to_datetime(fmt, time_unit="us", strict=False)
        for fmt in ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
    )
    local = naive.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    return pl.coalesce(with_offset.dt.cast_time_unit("us"), local.dt.convert_time_zone("UTC"))


def _id_suspect(columns) -> pl.Expr:
    """Ids that may be too long (bytes >= characters) or hold a control character."""
    return pl.any_horizontal(
        (pl.col(c).str.len_bytes() > MAX_ID_LENGTH) | pl.col(c).str.contains(_CONTROL) for c in columns
    ).fill_null(False)


def _with_context(df: pl.DataFrame, merchants: pl.DataFrame) -> pl.DataFrame:
    """Add the currency's exponent, scale and frac_div, the merchant context fields and `context_row` (the
    position of the matching row in `merchants`); null when unknown.

    A left join on the merchant key; when `shop_id` is unique in the context, a join on it alone gives
    the context row (compared on the other key columns), and an integer join its fields (three times
    faster than one join on four string columns). `_ctx_suspect` marks rows
    whose context key has a doubtful id (the row has the same id). (A faster lookup by gathering context
    values with null indices for unknown merchants made polars 2.1 panic later on the gathered strings.)
    """
    context, slim, fields = _prepared(merchants)
    if slim is not None:
        others = [c for c in MERCHANT_KEY if c != "shop_id"]
        same = pl.all_horizontal(pl.col(c) == pl.col(f"_ctx_{c}") for c in others).fill_null(False)
        joined = (
            df.join(slim, on="shop_id", how="left", maintain_order="left")
            .with_columns(context_row=pl.when(same).then("context_row"))
            .drop(f"_ctx_{c}" for c in others)
            .join(fields, on="context_row", how="left", maintain_order="left")
        )
    else:
        joined = df.join(context, on=list(MERCHANT_KEY), how="left", maintain_order="left")
    exponent = pl.col("currency").replace_strict(currency_exponents(), default=None, return_dtype=pl.Int64)
    return joined.with_columns(exponent=exponent).with_columns(
        scale=pl.lit(10, pl.Int64).pow(pl.col("exponent")),
        frac_div=pl.lit(10, pl.Int64).pow(MAX_EXPONENT - pl.col("exponent")),
    )


def _prepared(merchants: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame | None]:
    """`_with_context`'s tables of a merchant context: the context with `context_row`, and when `shop_id` is
    unique, the join table on it and the fields by `context_row`."""
    context = merchants.with_row_index("context_row").with_columns(
        pl.col("context_row").cast(pl.Int64), _ctx_suspect=_id_suspect(MERCHANT_KEY[:3]))
    if not context["shop_id"].is_unique().all():
        return context, None, None
    others = [c for c in MERCHANT_KEY if c != "shop_id"]
    slim = context.select("shop_id", "context_row", *(pl.col(c).alias(f"_ctx_{c}") for c in others))
    return context, slim, context.drop(MERCHANT_KEY)


def _parse_simple(df: pl.DataFrame) -> pl.DataFrame:
    """Add `amount_minor` and `operation_ts` to rows in the usual shape, and `_suspect`: rows that may be bad.

    With the amount as an integer of 10^-4 units (e4): whole * scale + frac4 // frac_div == e4 // frac_div,
    and the amount has more decimals than allowed exactly when e4 is not a multiple of frac_div. Rows not
    in the usual shape, with too many decimals, an impossible date, a missing value, an unknown type,
    currency or merchant, or a doubtful id are `_suspect`: the rules decide them (and word their reasons).
    """
    date = pl.col("operation_date")
    simple = pl.col("amount").str.contains(_SIMPLE_AMOUNT) & date.str.contains(_SIMPLE_DATE)
    e4 = pl.col("amount").cast(pl.Decimal(18, MAX_EXPONENT), strict=False).to_physical().cast(pl.Int64)
    ts = date.str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ", strict=False)
    suspect = (
        pl.col("operation_ts").is_null()
        | (pl.col("_e4") % pl.col("frac_div") != 0).fill_null(True)
        | (pl.col("_e4") <= 0).fill_null(True)
        | pl.col("merchant_id").is_null()
        | ~pl.col("type").is_in(OPERATION_TYPES).fill_null(False)
        | pl.col("falcon_operation_id").is_null()
        | _id_suspect(ID_COLUMNS[:2])
        | pl.col("_ctx_suspect").fill_null(False)
    )
    return df.with_columns(_e4=pl.when(simple).then(e4), operation_ts=pl.when(simple).then(ts)).with_columns(
        amount_minor=pl.col("_e4") // pl.col("frac_div"), _suspect=suspect,
    ).drop("_e4", "_ctx_suspect")


def _parse_general(df: pl.DataFrame, tz: str) -> pl.DataFrame:
    """Add `decimals`, `amount_minor` and `operation_ts`, parsed from any text as the rules define them."""
    signed = pl.col("amount").str.strip_chars(" \t").str.strip_prefix("+")
    negative = signed.str.starts_with("-") & pl.col("type").is_in(SIGNED_TYPES)
    text = signed.str.strip_prefix("-")
    frac = text.str.extract(r"\.([0-9]*)$", 1).fill_null("").str.strip_chars_end("0")
    return (
        df.with_columns(
            decimals=frac.str.len_chars(),
            whole=text.str.extract(r"^([0-9]*)", 1).str.replace(r"^$", "0").cast(pl.Int64, strict=False),
            frac4=frac.str.slice(0, MAX_EXPONENT).str.pad_end(MAX_EXPONENT, "0").cast(pl.Int64, strict=False),
            operation_ts=parse_timestamp(pl.col("operation_date"), tz),
        )
        .with_columns(amount_minor=(pl.col("whole") * pl.col("scale") + pl.col("frac4") // pl.col("frac_div"))
                      * pl.when(negative).then(-1).otherwise(1))
        .drop("whole", "frac4")
    )


def _shown(column: str) -> pl.Expr:
    """A value for a message: quoted, control characters as U+FFFD, cut to 40 characters."""
    value = pl.col(column).str.replace_all(_CONTROL, "\ufffd")
    long = value.str.len_chars() > 40
    return pl.format("'{}'", pl.when(long).then(pl.format("{}...", value.str.slice(0, 40))).otherwise(value))


def _rules() -> list[tuple[str, pl.Expr, pl.Expr]]:
    """(reason code, the row breaks the rule, message) for every rule; the conditions are null-safe."""
    amount, date = pl.col("amount"), pl.col("operation_date")
    number = amount.str.contains(_NUMBER)
    text = amount.str.strip_chars(" \t")
    signed = pl.col("type").is_in(SIGNED_TYPES).fill_null(False)
    rules = [("missing_value", pl.col(c).is_null(), pl.lit(f"{c}: value is missing")) for c in REQUIRED]
    for c in ID_COLUMNS:
        rules.append(("control_character", pl.col(c).str.contains(_CONTROL),
                      pl.format(f"{c}: {{}} contains a control character (shown as \ufffd)", _shown(c))))
        rules.append(("id_too_long", pl.col(c).str.len_chars() > MAX_ID_LENGTH,
                      pl.format(f"{c}: {{}} has {{}} characters, more than {MAX_ID_LENGTH}", _shown(c),
                                pl.col(c).str.len_chars())))
    return [
        *rules,
        ("unknown_type", ~pl.col("type").is_in(OPERATION_TYPES),
         pl.format("type: {} is not one of " + ", ".join(OPERATION_TYPES), _shown("type"))),
        ("unknown_currency", pl.col("exponent").is_null() & pl.col("currency").is_not_null(),
         pl.format("currency: {} is not an ISO 4217 currency with minor units", _shown("currency"))),
        ("non_ascii_digit", amount.str.contains(_OTHER_DIGIT),
         pl.format("amount: {} has digits other than ASCII 0-9", _shown("amount"))),
        ("bad_amount", ~number & ~amount.str.contains(_OTHER_DIGIT),
         pl.format("amount: {} is not a decimal number", _shown("amount"))),
        ("non_positive_amount", number & ~signed & (text.str.starts_with("-") | ~text.str.contains("[1-9]")),
         pl.format("amount: {} must be positive", _shown("amount"))),
        ("zero_amount", number & signed & ~text.str.contains("[1-9]"),
         pl.format("amount: {} must not be zero for type {}", _shown("amount"), _shown("type"))),
        ("too_many_decimals", number & (pl.col("decimals") > pl.col("exponent")),
         pl.format("amount: '{}' has {} decimals, {} allows {}", text, "decimals", "currency", "exponent")),
        ("bad_date", ~date.str.contains(_ISO_DATE),
         pl.format("operation_date: {} is not an ISO 8601 date or date-time", _shown("operation_date"))),
        ("bad_date", date.str.contains(_ISO_DATE) & pl.col("operation_ts").is_null(),
         pl.format("operation_date: {} is not a valid date-time", _shown("operation_date"))),
        ("unknown_merchant",
         pl.all_horizontal(pl.col(c).is_not_null() for c in (*MERCHANT_KEY, "exponent"))
         & pl.col("merchant_id").is_null(),
         pl.format("merchant context: no row for psp_id={}, local_merchant_id={}, shop_id={}, currency={}",
                   *map(_shown, MERCHANT_KEY))),
    ]


def _reasons(suspects: pl.DataFrame) -> pl.DataFrame:
    """One row per (row, broken rule) among the suspect rows."""
    if not len(suspects):
        return reasons_frame([])
    return pl.concat([
        suspects.filter(broken.fill_null(False)).select(
            "row_number", pl.lit(code).alias("reason_code"), message.alias("reason"))
        for code, broken, message in _rules()
    ])


def validate_operations(
    df: pl.DataFrame, merchants: pl.DataFrame, tz: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Check every row: (rows with `valid`, `amount_minor`, `operation_ts` and merchant fields, rejections).

    Rows in the usual shape (plain amount with at most 4 decimals, `YYYY-MM-DDTHH:MM:SSZ`, known type,
    currency and merchant) take a fast path; the others (`_suspect`) go through the general parser and
    every rule. Rows are flagged, not filtered: a filter would copy millions of rows to drop a few.
    """
    parsed = _parse_simple(_with_context(df, merchants))
    if not parsed["_suspect"].any():  # the usual case of a small batch: nothing more to parse or check
        return parsed.drop("_suspect").with_columns(valid=pl.lit(True)), reasons_frame([])
    suspects = _parse_general(parsed.filter("_suspect"), tz)
    rejects = combine_reasons(_reasons(suspects))
    if len(suspects):  # the general parser's values into their rows (in the order of `parsed`)
        at = parsed.select(pl.arg_where("_suspect")).to_series()
        parsed = parsed.with_columns(parsed[c].scatter(at, suspects[c])
                                     for c in ("amount_minor", "operation_ts"))
    valid = ~pl.col("row_number").is_in(rejects["row_number"].implode())
    return parsed.drop("_suspect").with_columns(valid=valid), rejects


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
