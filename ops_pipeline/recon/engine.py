"""Match internal records against external records: manual decisions first, then the rules in order.

Records are Polars frames (or Arrow tables) with `id` (string), `amount` (integer minor units), `currency`
and the fields the rules read. Each record ends in exactly one result row (exclusive matching).

How a rule picks pairs: every candidate (same currency and keys, amounts within tolerance, dates within
the window, not forbidden by an unmatch decision) is ranked by absolute amount difference, then date
distance, then internal id, then external id; a greedy pass takes candidates in that order, skipping any
whose internal or external side is already taken. The outcome is deterministic and each side is used once.
For 1:N and N:1 the N side is grouped by `group_by` first and a group is taken whole.

Amount difference of a row = internal amount - external amount (an unmatched external record is negative).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl
import pyarrow as pa

from ops_pipeline.errors import InvalidInput
from ops_pipeline.recon.rules import Recon, Rule, normalised_reference

ACTIONS = ("match", "unmatch", "write_off")
STATUSES = ("matched", "matched_with_difference", "unmatched_internal", "unmatched_external", "manual")
RESULT_SCHEMA = pl.Schema({"recon": pl.String, "business_date": pl.Date, "internal_ids": pl.List(pl.String),
                           "external_ids": pl.List(pl.String), "rule_id": pl.String, "status": pl.String,
                           "internal_amount_minor": pl.Int64, "external_amount_minor": pl.Int64,
                           "currency": pl.String, "reason": pl.String, "decided_by": pl.String,
                           "note": pl.String})


@dataclass(frozen=True)
class Decision:
    """An ops user's decision on a break: force a match, forbid a pair, or write records off."""

    action: str
    internal_ids: tuple[str, ...]
    external_ids: tuple[str, ...]
    note: str
    actor: str


@dataclass(frozen=True)
class ResultRow:
    recon: str
    business_date: date
    internal_ids: tuple[str, ...]
    external_ids: tuple[str, ...]
    rule_id: str | None
    status: str
    internal_amount_minor: int
    external_amount_minor: int
    currency: str
    reason: str
    decided_by: str | None = None
    note: str | None = None

    @property
    def amount_difference_minor(self) -> int:
        return self.internal_amount_minor - self.external_amount_minor


def match(internal: pl.DataFrame | pa.Table, external: pl.DataFrame | pa.Table, recon: Recon,
          business_date: date, decisions: Sequence[Decision] = ()) -> list[ResultRow]:
    """`match_frame` as `ResultRow`s."""
    return result_rows(match_frame(internal, external, recon, business_date, decisions))


def result_rows(frame: pl.DataFrame) -> list[ResultRow]:
    """The rows of a result frame (`RESULT_SCHEMA`) as `ResultRow`s."""
    return [ResultRow(**{**r, "internal_ids": tuple(r["internal_ids"]),
                         "external_ids": tuple(r["external_ids"])}) for r in frame.iter_rows(named=True)]


def match_frame(internal: pl.DataFrame | pa.Table, external: pl.DataFrame | pa.Table, recon: Recon,
                business_date: date, decisions: Sequence[Decision] = ()) -> pl.DataFrame:
    """Every record of both sides in exactly one row (`RESULT_SCHEMA`): manual rows, each rule's pairs in
    rank order, then unmatched internal and external records by id; `decisions` in the order they were taken
    (one naming a record absent from the input is refused: decisions are about this date's records)."""
    fields = {f for rule in recon.rules for f in (*rule.criteria.fields, *rule.group_by)}
    dates = {rule.criteria.date_field for rule in recon.rules} - {None}
    sides = {"internal": _records(internal, "internal", fields, dates),
             "external": _records(external, "external", fields, dates)}
    forced, forbidden = fold_decisions(decisions)
    parts = [pl.DataFrame([_manual_row(recon.name, business_date, sides, d).__dict__ for d in forced],
                          schema=RESULT_SCHEMA)]
    taken = {"internal": [i for d in forced for i in d.internal_ids],
             "external": [i for d in forced for i in d.external_ids]}
    pool = {s: sides[s].filter(~pl.col("id").is_in(taken[s])) for s in sides}
    common = {"recon": pl.lit(recon.name), "business_date": pl.lit(business_date, pl.Date)}
    for rule in recon.rules:
        pairs = _pairs(pool["internal"], pool["external"], rule, forbidden)
        gap = pl.col("amount") - pl.col("amount_e")
        parts.append(pairs.select(
            **common, internal_ids="ids", external_ids="ids_e", rule_id=pl.lit(rule.id),
            status=pl.when(gap == 0).then(pl.lit("matched")).otherwise(pl.lit("matched_with_difference")),
            internal_amount_minor="amount", external_amount_minor="amount_e", currency="currency",
            reason=pl.when(gap == 0).then(pl.lit(f"rule {rule.id}"))
            .otherwise(pl.format(f"rule {rule.id}: internal - external = {{}} minor units", gap)),
            decided_by=pl.lit(None, pl.String), note=pl.lit(None, pl.String)))
        for side, ids in (("internal", "ids"), ("external", "ids_e")):
            pool[side] = pool[side].join(pairs.select(pl.col(ids).explode().alias("id")), on="id", how="anti")
    unmatched = sorted({pair_id for pair in forbidden for pair_id in (*pair[0], *pair[1])})
    tried = ", ".join(r.id for r in recon.rules) or "none"
    none = pl.lit([], pl.List(pl.String))
    for side, status in (("internal", "unmatched_internal"), ("external", "unmatched_external")):
        ids = pl.concat_list("id")
        amount, zero = pl.col("amount"), pl.lit(0, pl.Int64)
        parts.append(pool[side].sort("id").select(
            **common, internal_ids=ids if side == "internal" else none,
            external_ids=ids if side == "external" else none, rule_id=pl.lit(None, pl.String),
            status=pl.lit(status), internal_amount_minor=amount if side == "internal" else zero,
            external_amount_minor=amount if side == "external" else zero, currency="currency",
            reason=pl.when(pl.col("id").is_in(unmatched)).then(pl.lit("manually unmatched"))
            .otherwise(pl.lit(f"no match under rules: {tried}")),
            decided_by=pl.lit(None, pl.String), note=pl.lit(None, pl.String)))
    return pl.concat([p.cast(RESULT_SCHEMA) for p in parts])


def _records(frame: pl.DataFrame | pa.Table, side: str, fields: set[str], dates: set[str]) -> pl.DataFrame:
    """The side's records, checked: required columns, integer amounts, dates, no null or duplicate ids."""
    df = frame if isinstance(frame, pl.DataFrame) else pl.from_arrow(frame)
    missing = sorted({"id", "amount", "currency", *fields} - set(df.columns))
    if missing:
        raise InvalidInput(f"{side} records lack columns {missing}")
    if not df.schema["amount"].is_integer():
        raise InvalidInput(f"{side} records: column 'amount' is {df.schema['amount']}; amounts must be "
                           "integers in minor units")
    for column in sorted(dates):
        if not df.schema[column].is_temporal():
            raise InvalidInput(f"{side} records: date column {column!r} is {df.schema[column]}, not a date")
    for column in ("id", "amount", "currency"):
        if df[column].null_count():
            raise InvalidInput(f"{side} records: column {column!r} has empty values")
    df = df.with_columns(pl.col("id").cast(pl.String), pl.col("amount").cast(pl.Int64))
    if df["id"].n_unique() < df.height:
        duplicated = df.filter(pl.col("id").is_duplicated())["id"].unique().sort().to_list()
        raise InvalidInput(f"{side} records: duplicate ids {duplicated[:5]}")
    return df


def fold_decisions(decisions: Sequence[Decision]) -> tuple[list[Decision], set[tuple[frozenset, frozenset]]]:
    """Forced matches and write-offs still standing, and the pairs unmatch decisions forbid (exactly those
    sets of ids: an unmatched 1:N group may still match in another grouping). A later decision touching an
    id replaces an earlier forced match or write-off of it; a later match of a forbidden pair lifts it."""
    forced: list[Decision] = []
    forbidden: set[tuple[frozenset, frozenset]] = set()
    for d in decisions:
        ids = {*d.internal_ids, *d.external_ids}
        forced = [f for f in forced if not ids & {*f.internal_ids, *f.external_ids}]
        pair = (frozenset(d.internal_ids), frozenset(d.external_ids))
        if d.action == "unmatch":
            forbidden.add(pair)
        else:
            forbidden.discard(pair)
            forced.append(d)
    return forced, forbidden


def _manual_row(recon: str, business_date: date, sides: dict[str, pl.DataFrame], d: Decision) -> ResultRow:
    amounts, currencies = {}, set()
    for side, ids in (("internal", d.internal_ids), ("external", d.external_ids)):
        found = sides[side].filter(pl.col("id").is_in(list(ids)))
        absent = sorted(set(ids) - set(found["id"].to_list()))
        if absent:
            raise InvalidInput(f"{d.action} decision by {d.actor}: {side} ids {absent} are not in this run")
        amounts[side] = int(found["amount"].sum())
        currencies |= set(found["currency"].to_list())
    if len(currencies) != 1:
        raise InvalidInput(f"{d.action} decision by {d.actor}: records in currencies {sorted(currencies)}")
    reason = "write-off" if d.action == "write_off" else "manual match"
    return ResultRow(recon, business_date, tuple(sorted(d.internal_ids)), tuple(sorted(d.external_ids)),
                     None, "manual", amounts["internal"], amounts["external"], currencies.pop(), reason,
                     d.actor, d.note)


def _units(df: pl.DataFrame, rule: Rule, grouped: bool) -> pl.DataFrame:
    """Matchable units of one side: single records, or groups by `group_by` (normalised references);
    `_u` names the unit (its sorted ids joined by commas)."""
    c = rule.criteria
    day = pl.col(c.date_field).cast(pl.Date) if c.date_field else pl.lit(None, pl.Date)
    df = df.with_columns(day.alias("_day"),
                         *[normalised_reference(f).alias(f"_ref_{f}")
                           for f in c.references])
    keys = ["currency", *c.equal, *[f"_ref_{f}" for f in c.references]]
    if not grouped:
        return df.select(*keys, pl.col("id").alias("_u"), "amount",
                         pl.col("_day").alias("dmin"), pl.col("_day").alias("dmax"))
    by = ["currency", *[f"_ref_{f}" if f in c.references else f for f in rule.group_by]]
    return (df.drop_nulls(by).group_by(by)
            .agg(pl.col("id").sort().alias("ids"), pl.col("amount").sum(), pl.col("_day").min().alias("dmin"),
                 pl.col("_day").max().alias("dmax"))
            .select(*keys, pl.col("ids").list.join(",").alias("_u"), "ids", "amount", "dmin", "dmax"))


def _pairs(internal: pl.DataFrame, external: pl.DataFrame, rule: Rule,
           forbidden: set[tuple[frozenset, frozenset]]) -> pl.DataFrame:
    """The pairs of units a rule matches (ids, ids_e, amount, amount_e, currency) in rank order, as the
    greedy pass of the module docstring picks them. Computed in rounds: every candidate ranked first among
    the remaining candidates of both its units is taken, then candidates touching a taken unit are dropped;
    this takes exactly the pairs the sequential greedy pass takes."""
    out = pl.DataFrame(schema={"ids": pl.List(pl.String), "ids_e": pl.List(pl.String), "amount": pl.Int64,
                               "amount_e": pl.Int64, "currency": pl.String})
    if internal.is_empty() or external.is_empty():
        return out
    c = rule.criteria
    left = _units(internal, rule, grouped=rule.cardinality == "N:1")
    right = _units(external, rule, grouped=rule.cardinality == "1:N")
    keys = ["currency", *c.equal, *[f"_ref_{f}" for f in c.references]]
    right = right.rename({name: f"{name}_e" for name in right.columns if name not in keys})
    days = pl.max_horizontal((pl.col("dmax") - pl.col("dmin_e")).dt.total_days().abs(),
                             (pl.col("dmax_e") - pl.col("dmin")).dt.total_days().abs()).fill_null(0)
    barred = pl.DataFrame([(",".join(sorted(i)), ",".join(sorted(e))) for i, e in forbidden],
                          schema={"_u": pl.String, "_u_e": pl.String}, orient="row")
    candidates = (left.join(right, on=keys)
                  .with_columns((pl.col("amount") - pl.col("amount_e")).abs().alias("_gap"),
                                days.alias("_days"))
                  .filter(pl.col("_gap") <= c.amount_tolerance_minor)
                  .filter(pl.col("_days") <= c.date_window_days if c.date_field else pl.lit(True))
                  .join(barred, on=["_u", "_u_e"], how="anti")
                  .sort("_gap", "_days", "_u", "_u_e")
                  .with_row_index("_rank"))
    rounds = []
    while not candidates.is_empty():
        first = candidates.filter((pl.col("_rank") == pl.col("_rank").min().over("_u"))
                                  & (pl.col("_rank") == pl.col("_rank").min().over("_u_e")))
        rounds.append(first)
        if first.height == candidates.height:  # all taken: the usual case of one candidate per unit
            break
        candidates = (candidates.join(first.select("_u"), on="_u", how="anti")
                      .join(first.select("_u_e"), on="_u_e", how="anti"))
    if not rounds:
        return out
    chosen = pl.concat(rounds).sort("_rank")
    ids = {side: pl.col(f"ids{side}") if f"ids{side}" in chosen.columns else pl.concat_list(f"_u{side}")
           for side in ("", "_e")}
    return chosen.select(ids=ids[""], ids_e=ids["_e"], amount="amount", amount_e="amount_e",
                         currency="currency")
