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
    """Every record of both sides in exactly one row; `decisions` in the order they were taken (one naming
    a record absent from the input is refused: decisions are about this date's records)."""
    fields = {f for rule in recon.rules for f in (*rule.criteria.fields, *rule.group_by)}
    dates = {rule.criteria.date_field for rule in recon.rules} - {None}
    sides = {"internal": _records(internal, "internal", fields, dates),
             "external": _records(external, "external", fields, dates)}
    forced, forbidden = _fold(decisions)
    rows = [_manual_row(recon.name, business_date, sides, d) for d in forced]
    taken = {"internal": [i for d in forced for i in d.internal_ids],
             "external": [i for d in forced for i in d.external_ids]}
    pool = {s: sides[s].filter(~pl.col("id").is_in(taken[s])) for s in sides}
    for rule in recon.rules:
        pairs = _pairs(pool["internal"], pool["external"], rule, forbidden)
        for p in pairs:
            status = "matched" if p["amount"] == p["amount_e"] else "matched_with_difference"
            reason = f"rule {rule.id}" if status == "matched" else \
                f"rule {rule.id}: amounts differ by {p['amount'] - p['amount_e']} within tolerance"
            rows.append(ResultRow(recon.name, business_date, tuple(p["ids"]), tuple(p["ids_e"]), rule.id,
                                  status, p["amount"], p["amount_e"], p["currency"], reason))
        used_i = [i for p in pairs for i in p["ids"]]
        used_e = [i for p in pairs for i in p["ids_e"]]
        pool = {"internal": pool["internal"].filter(~pl.col("id").is_in(used_i)),
                "external": pool["external"].filter(~pl.col("id").is_in(used_e))}
    unmatched = {pair_id for pair in forbidden for pair_id in (*pair[0], *pair[1])}
    tried = ", ".join(r.id for r in recon.rules) or "none"
    for side, status in (("internal", "unmatched_internal"), ("external", "unmatched_external")):
        for r in pool[side].sort("id").iter_rows(named=True):
            reason = "manually unmatched" if r["id"] in unmatched else f"no match under rules: {tried}"
            ids, amount = ((r["id"],), r["amount"])
            rows.append(ResultRow(recon.name, business_date, ids if side == "internal" else (),
                                  ids if side == "external" else (), None, status,
                                  amount if side == "internal" else 0, amount if side == "external" else 0,
                                  r["currency"], reason))
    return rows


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
    duplicated = df.filter(pl.col("id").is_duplicated())["id"].unique().sort().to_list()
    if duplicated:
        raise InvalidInput(f"{side} records: duplicate ids {duplicated[:5]}")
    return df


def _fold(decisions: Sequence[Decision]) -> tuple[list[Decision], set[tuple[frozenset, frozenset]]]:
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
    """Matchable units of one side: single records, or groups by `group_by` (normalised references)."""
    c = rule.criteria
    day = pl.col(c.date_field).cast(pl.Date) if c.date_field else pl.lit(None, pl.Date)
    df = df.with_columns(day.alias("_day"),
                         *[normalised_reference(f).alias(f"_ref_{f}")
                           for f in c.references])
    keys = ["currency", *c.equal, *[f"_ref_{f}" for f in c.references]]
    if not grouped:
        return df.select(*keys, pl.concat_list("id").alias("ids"), "amount",
                         pl.col("_day").alias("dmin"), pl.col("_day").alias("dmax"))
    by = ["currency", *[f"_ref_{f}" if f in c.references else f for f in rule.group_by]]
    return (df.drop_nulls(by).group_by(by)
            .agg(pl.col("id").sort().alias("ids"), pl.col("amount").sum(), pl.col("_day").min().alias("dmin"),
                 pl.col("_day").max().alias("dmax"))
            .select(*keys, "ids", "amount", "dmin", "dmax"))


def _pairs(internal: pl.DataFrame, external: pl.DataFrame, rule: Rule,
           forbidden: set[tuple[frozenset, frozenset]]) -> list[dict]:
    """The pairs of units a rule matches, chosen greedily in rank order (module docstring)."""
    if internal.is_empty() or external.is_empty():
        return []
    c = rule.criteria
    left = _units(internal, rule, grouped=rule.cardinality == "N:1")
    right = _units(external, rule, grouped=rule.cardinality == "1:N")
    keys = ["currency", *c.equal, *[f"_ref_{f}" for f in c.references]]
    days = pl.max_horizontal((pl.col("dmax") - pl.col("dmin_e")).dt.total_days().abs(),
                             (pl.col("dmax_e") - pl.col("dmin")).dt.total_days().abs()).fill_null(0)
    candidates = (left.join(right, on=keys, suffix="_e")
                  .with_columns((pl.col("amount") - pl.col("amount_e")).abs().alias("_gap"),
                                days.alias("_days"), pl.col("ids").list.join(",").alias("_i"),
                                pl.col("ids_e").list.join(",").alias("_e"))
                  .filter(pl.col("_gap") <= c.amount_tolerance_minor)
                  .filter(pl.col("_days") <= c.date_window_days if c.date_field else pl.lit(True))
                  .sort("_gap", "_days", "_i", "_e"))
    chosen, used_i, used_e = [], set(), set()
    for p in candidates.iter_rows(named=True):
        pair = (frozenset(p["ids"]), frozenset(p["ids_e"]))
        if p["_i"] in used_i or p["_e"] in used_e or pair in forbidden:
            continue
        used_i.add(p["_i"])
        used_e.add(p["_e"])
        chosen.append(p)
    return chosen
