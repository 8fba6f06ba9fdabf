"""Commission terms and their arithmetic, exact in integer minor units (Polars expressions, no Python loops).

Meaning. A *sale* is a voucher handed to a distributor (its event to `distributed`). The *discount* of a sale
is what the distributor paid less than the face value (`face_value - price_paid`, never below 0; settled in
its wallet when it bought the voucher). The *commission* is what the distributor owes us for the sale: it is
invoiced monthly (`giftcards.invoices`) and paid by bank transfer.

Which terms apply to a sale of program P by distributor D on day d: the first of the assignment's
`commission_rules` in force on d; else the assignment's `commission_percent` when above 0; else the first of
the program's `commission_rules` in force on d; else none (commission 0).

Arithmetic per sale, in the program's currency:
- percent: face value x percent / 100, rounded half-even to the minor unit, per sale; flat: the amount.
- tiered: the tier is found by the month's volume *before* the sale (a count of sales, or their face value,
  per distributor, program and rule). `marginal`: each sale earns the tier its place falls in (final).
  `whole_month`: the daily lines earn the marginal tier; when the month is invoiced, an adjustment line
  brings the month to every sale at the tier the whole month reached (`month_adjustments`).
- `cap_per_voucher` caps each sale's commission; `cap_per_month` caps the month's sum per distributor,
  program and rule: the sale crossing the cap earns the rest, later sales 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

import polars as pl

from ops_pipeline.giftcards.model import CommissionRule
from ops_pipeline.money import to_minor

RATE_SCALE = 1_000_000  # percent x 10^4 (4 decimals), over 100
GROUP = ["party_id", "program_id", "rule_key"]
NO_RULE = "none"
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Terms:
    """A rule compiled to minor units: tiers as (from volume, rate in percent x 10^4, flat in minor units);
    a volume is a count or a face value in minor units (`basis`)."""

    rule_key: str
    basis: str = "count"
    mode: str = "marginal"
    tiers: tuple[tuple[int, int, int], ...] = ((0, 0, 0),)
    cap_voucher_minor: int | None = None
    cap_month_minor: int | None = None

    @cached_property
    def json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Terms:
        data = json.loads(text)
        return cls(**{**data, "tiers": tuple(tuple(t) for t in data["tiers"])})


def _rate(percent: Decimal | None) -> int:
    return int((percent or Decimal(0)) * 10_000)


def _minor(amount: Decimal | None, currency: str) -> int | None:
    return None if amount is None else to_minor(amount, currency)


def compile_rule(rule: CommissionRule, currency: str, rule_key: str) -> Terms:
    """The rule in minor units of `currency`."""
    if rule.kind == "tiered":

        def volume(v: Decimal) -> int:
            return int(v) if rule.tier_basis == "count" else to_minor(v, currency, "from_volume")

        tiers = tuple(
            (volume(t.from_volume), _rate(t.percent), _minor(t.flat_amount, currency) or 0)
            for t in rule.tiers
        )
    else:
        tiers = ((0, _rate(rule.percent), _minor(rule.flat_amount, currency) or 0),)
    return Terms(
        rule_key,
        rule.tier_basis,
        rule.tier_mode,
        tiers,
        _minor(rule.cap_per_voucher, currency),
        _minor(rule.cap_per_month, currency),
    )


class Book:
    """The commission terms of sales: the rules of programs and assignments (stored rows, `details` holding
    the validated models' JSON) parsed once, each rule compiled once (one `Terms` object per rule key)."""

    def __init__(self, programs: Iterable[Any], assignments: Iterable[Any]):
        self._programs = {p.program_id: (p.currency, _rules(p.details)) for p in programs}
        self._assignments: dict[tuple[str, str], list[Any]] = {}
        for a in sorted(assignments, key=lambda a: a.id, reverse=True):  # the latest first
            self._assignments.setdefault((a.party_id, a.program_id), []).append(
                (
                    a.starts_on,
                    a.ends_on,
                    a.id,
                    _rules(a.details),
                    Decimal(a.details.get("commission_percent") or 0),
                )
            )
        self._compiled: dict[str, Terms] = {NO_RULE: Terms(NO_RULE)}

    def _compile(self, key: str, rule: CommissionRule | Decimal, currency: str) -> Terms:
        terms = self._compiled.get(key)
        if terms is None:
            terms = self._compiled[key] = (
                compile_rule(rule, currency, key)
                if isinstance(rule, CommissionRule)
                else Terms(key, tiers=((0, _rate(rule), 0),))
            )
        return terms

    def runs(self, party_id: str, program_id: str, first: date, last: date) -> list[tuple[date, date, Terms]]:
        """The terms of the days from `first` to `last` as runs (first day, last day, terms): days are looked
        at one by one only where an assignment or a rule starts or ends."""
        edges = sorted({d for d in self._edges(party_id, program_id) if first < d <= last} | {last + DAY})
        runs: list[tuple[date, date, Terms]] = []
        day = first
        for edge in edges:
            terms = self.terms(party_id, program_id, day)
            if terms is not None:
                runs.append((day, edge - DAY, terms))
            day = edge
        return runs

    def _edges(self, party_id: str, program_id: str) -> set[date]:
        """The days the terms of a pair may change on: a start, or the day after an end."""
        rules = list(self._programs.get(program_id, ("", []))[1])
        edges: set[date] = set()
        for starts_on, ends_on, _, own, _ in self._assignments.get((party_id, program_id), ()):
            rules += own
            edges |= {starts_on} | ({ends_on + DAY} if ends_on else set())
        for rule in rules:
            edges |= ({rule.starts_on} if rule.starts_on else set()) | (
                {rule.ends_on + DAY} if rule.ends_on else set()
            )
        return edges

    def terms(self, party_id: str, program_id: str, on: date) -> Terms | None:
        """The terms of a sale on `on` (see the module's docstring); None for an unknown program."""
        if program_id not in self._programs:
            return None
        currency, program_rules = self._programs[program_id]
        for starts_on, ends_on, assignment_id, rules, percent in self._assignments.get(
            (party_id, program_id), ()
        ):
            if starts_on <= on and (ends_on is None or on <= ends_on):
                for n, rule in enumerate(rules):
                    if rule.in_force(on):
                        return self._compile(f"assignment:{assignment_id}:{n}", rule, currency)
                if percent > 0:
                    return self._compile(f"assignment:{assignment_id}:percent", percent, currency)
                break
        for n, rule in enumerate(program_rules):
            if rule.in_force(on):
                return self._compile(f"program:{program_id}:{n}", rule, currency)
        return self._compiled[NO_RULE]


def _rules(details: dict[str, Any]) -> list[CommissionRule]:
    return [CommissionRule.model_validate(r) for r in details.get("commission_rules") or []]


@dataclass(frozen=True)
class Frames:
    """Terms as frames: `pairs` (party_id, program_id, run_first, run_last, pair, rule) per run of days,
    `rules` (rule, rule_key, terms, basis, caps) per rule, `tiers` (tier_key = (rule + 1) << SHIFT | from
    volume, rate_e4, flat_minor)."""

    pairs: pl.DataFrame
    rules: pl.DataFrame
    tiers: pl.DataFrame


TIME_BITS = 42  # microseconds from the day before a span's first day: 50 days fit
SHIFT = 44  # volumes (counts, face values in minor units) stay below 2^44 per month and rule


def terms_frames(runs: list[tuple[str, str, date, date, Terms]]) -> Frames:
    """The frames of the terms of each (party_id, program_id) in runs of days (`Book.runs`)."""
    index: dict[str, int] = {}
    for *_, t in runs:
        index.setdefault(t.rule_key, len(index))
    unique = {t.rule_key: t for *_, t in runs}
    pair_index: dict[tuple[str, str], int] = {}
    group_index: dict[tuple[str, str, str], int] = {}  # (party, program, rule): the running sums' groups
    pairs = pl.DataFrame(
        {
            "party_id": [r[0] for r in runs],
            "program_id": [r[1] for r in runs],
            "run_first": [r[2] for r in runs],
            "run_last": [r[3] for r in runs],
            "pair": [pair_index.setdefault(r[:2], len(pair_index)) for r in runs],
            "rule": [index[r[4].rule_key] for r in runs],
            "group": [group_index.setdefault((*r[:2], r[4].rule_key), len(group_index)) for r in runs],
        },
        schema={
            "party_id": pl.String,
            "program_id": pl.String,
            "run_first": pl.Date,
            "run_last": pl.Date,
            "pair": pl.Int64,
            "rule": pl.Int64,
            "group": pl.Int64,
        },
    )
    rules = pl.DataFrame(
        {
            "rule": list(index.values()),
            "rule_key": list(index),
            "terms": [unique[k].json for k in index],
            "basis": [unique[k].basis for k in index],
            "cap_voucher_minor": [unique[k].cap_voucher_minor for k in index],
            "cap_month_minor": [unique[k].cap_month_minor for k in index],
        },
        schema={
            "rule": pl.Int64,
            "rule_key": pl.String,
            "terms": pl.String,
            "basis": pl.String,
            "cap_voucher_minor": pl.Int64,
            "cap_month_minor": pl.Int64,
        },
    )
    tiers = pl.DataFrame(
        [
            {"tier_key": ((index[key] + 1) << SHIFT) + f, "tier_from": f, "rate_e4": r, "flat_minor": m}
            for key, t in unique.items()
            for f, r, m in t.tiers
        ],
        schema={"tier_key": pl.Int64, "tier_from": pl.Int64, "rate_e4": pl.Int64, "flat_minor": pl.Int64},
    )
    return Frames(pairs, rules, tiers.sort("tier_key"))


def half_even(numerator: pl.Expr, denominator: int) -> pl.Expr:
    """numerator / denominator rounded half to even, in integers (numerator >= 0)."""
    q = numerator // denominator
    twice_r = (numerator - q * denominator) * 2
    return q + ((twice_r > denominator) | ((twice_r == denominator) & (q % 2 == 1))).cast(pl.Int64)


def _per_sale(rate: pl.Expr, flat: pl.Expr, cap: pl.Expr) -> pl.Expr:
    raw = half_even(pl.col("face_value_minor") * rate, RATE_SCALE) + flat
    return pl.when(cap.is_null()).then(raw).otherwise(pl.min_horizontal(raw, cap))


def _volume(count: pl.Expr, face: pl.Expr) -> pl.Expr:
    return pl.when(pl.col("basis") == "count").then(count).otherwise(face)


def compute(sales: pl.DataFrame, frames: Frames, prior: pl.DataFrame) -> pl.DataFrame:
    """Commission lines of `sales` (one row each: sale_id, voucher_id, party_id, program_id, currency,
    face_value_minor, price_paid_minor, sold_at, sale_date), given their terms (`terms_frames`) and the
    month's earlier lines summed per distributor, program and rule (`prior`: rule_key, sales,
    face_value_minor, commission_minor). Sales of several days of one month are computed in one pass."""
    # Integer keys only: a sale's order, (group + 1) << TIME_BITS | its time (ties broken by a hash of the
    # voucher id), and its tier key, (rule + 1) << SHIFT | the group's volume before it. Sorted by tier key,
    # each group keeps its time order (its volumes increase): the running sums need no second sort.
    group = "group"
    since = datetime.combine(sales["sale_date"].min() or date(1970, 1, 2), time(), UTC) - timedelta(days=1)
    df = (
        sales.join(frames.pairs, on=["party_id", "program_id"], how="left")
        .filter(pl.col("run_first").is_null() | pl.col("sale_date").is_between("run_first", "run_last"))
        .with_columns(pl.col("rule", "pair", "group").fill_null(-1))
        .join(
            frames.rules.select("rule", "basis", "cap_voucher_minor", "cap_month_minor"),
            on="rule",
            how="left",
        )
        .with_columns(pl.col("basis").fill_null("count"))
        .join(
            prior.join(frames.rules.select("rule", "rule_key"), on="rule_key").select(
                "party_id",
                "program_id",
                "rule",
                prior_sales="sales",
                prior_face="face_value_minor",
                prior_commission="commission_minor",
            ),
            on=["party_id", "program_id", "rule"],
            how="left",
        )
        .with_columns(pl.col("prior_sales", "prior_face", "prior_commission").fill_null(0))
        .with_columns(
            order=(pl.col("group") + 1) * (1 << TIME_BITS)
            + (pl.col("sold_at") - since).dt.total_microseconds()
        )
        .sort("order", pl.col("voucher_id").hash(13))
        .with_columns(volume=_volume(pl.lit(1, pl.Int64), pl.col("face_value_minor")))
        .with_columns(
            tier_key=(pl.col("rule") + 1) * (1 << SHIFT)
            + _volume(pl.col("prior_sales"), pl.col("prior_face"))
            + pl.col("volume").cum_sum().over(group)
            - pl.col("volume")
        )
        .sort("tier_key", maintain_order=True)
        .join_asof(frames.tiers, on="tier_key", strategy="backward", check_sortedness=False)
        .with_columns(
            pl.when(pl.col("rule") >= 0).then(pl.col(c)).otherwise(None if c == "tier_from" else 0).alias(c)
            for c in ("tier_from", "rate_e4", "flat_minor")
        )
        .with_columns(raw=_per_sale(pl.col("rate_e4"), pl.col("flat_minor"), pl.col("cap_voucher_minor")))
        .with_columns(running=pl.col("prior_commission") + pl.col("raw").cum_sum().over(group))
        .with_columns(
            commission_minor=pl.when(pl.col("cap_month_minor").is_null())
            .then(pl.col("raw"))
            .otherwise(
                pl.min_horizontal("running", "cap_month_minor")
                - pl.min_horizontal(pl.col("running") - pl.col("raw"), "cap_month_minor")
            )
        )
        .with_columns(
            discount_minor=(pl.col("face_value_minor") - pl.col("price_paid_minor")).clip(lower_bound=0)
        )
    )
    # a rule's key and terms repeat on each of its lines: as categoricals they are codes, not copies
    names = (
        frames.rules.select("rule", "rule_key", "terms")
        .vstack(pl.DataFrame({"rule": [-1], "rule_key": [NO_RULE], "terms": [Terms(NO_RULE).json]}))
        .with_columns(pl.col("rule_key", "terms").cast(pl.Categorical))
    )
    df = df.join(names, on="rule", how="left")
    return df.select(
        "sale_id",
        "voucher_id",
        "party_id",
        "program_id",
        "currency",
        "sold_at",
        "face_value_minor",
        "price_paid_minor",
        "discount_minor",
        "rule_key",
        "terms",
        "tier_from",
        "rate_e4",
        "flat_minor",
        "commission_minor",
        "sale_date",
    )


def month_adjustments(month: pl.DataFrame) -> pl.DataFrame:
    """Per distributor, program and whole-month rule of a month's lines summed per face value
    (`commission_lines.month_totals`): what brings the month to every sale at the tier the whole month
    reached (capped per voucher and per month), less what the lines earned. Columns party_id, program_id,
    currency, rule_key, adjustment_minor (non-zero rows only)."""
    month = month.with_columns(pl.col("rule_key", "terms").cast(pl.String))
    month = month.filter(pl.col("terms").str.contains('"mode":"whole_month"', literal=True))
    schema = {
        "party_id": pl.String,
        "program_id": pl.String,
        "currency": pl.String,
        "rule_key": pl.String,
        "adjustment_minor": pl.Int64,
    }
    if month.is_empty():
        return pl.DataFrame(schema=schema)
    compiled = {
        key: Terms.from_json(text) for key, text in month.select("rule_key", "terms").unique().iter_rows()
    }
    frames = terms_frames([("", key, date.min, date.max, t) for key, t in compiled.items()])
    group = ["party_id", "program_id", "currency", "rule_key"]
    reached = (
        month.lazy()
        .join(frames.rules.lazy().drop("terms"), on="rule_key")
        .group_by(group)
        .agg(
            pl.col("sales").sum(),
            (pl.col("face_value_minor") * pl.col("sales")).sum().alias("face"),
            pl.col("commission_minor").sum().alias("earned"),
            pl.col("basis", "rule", "cap_month_minor").first(),
        )
        .with_columns(tier_key=(pl.col("rule") + 1) * (1 << SHIFT) + _volume(pl.col("sales"), pl.col("face")))
        .sort("tier_key")
        .join_asof(frames.tiers.lazy(), on="tier_key", strategy="backward", check_sortedness=False)
        .select(*group, "rate_e4", "flat_minor", "earned", "cap_month_minor")
    )
    return (
        month.lazy()
        .select(*group, "face_value_minor", "sales")
        .join(reached, on=group)
        .join(frames.rules.lazy().select("rule_key", "cap_voucher_minor"), on="rule_key")
        .with_columns(
            target=pl.col("sales")
            * _per_sale(pl.col("rate_e4"), pl.col("flat_minor"), pl.col("cap_voucher_minor"))
        )
        .group_by(group)
        .agg(pl.col("target").sum(), pl.col("earned").first(), pl.col("cap_month_minor").first())
        .with_columns(
            target=pl.when(pl.col("cap_month_minor").is_null())
            .then(pl.col("target"))
            .otherwise(pl.min_horizontal("target", "cap_month_minor"))
        )
        .select(*group, adjustment_minor=pl.col("target") - pl.col("earned"))
        .filter(pl.col("adjustment_minor") != 0)
        .sort(group)
        .collect()
    )
