"""What a reconciliation is: an ordered list of matching rules over internal and external records.

Both sides name their fields alike (rename before matching). Reference fields compare after
`normalise_reference`: upper case, with spaces and dashes removed and then leading zeros stripped, so
" ab-0012 3" and "AB00123" agree and "000123" equals "123"; a reference empty after that never matches.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ops_pipeline.errors import InvalidInput

CARDINALITIES = ("1:1", "1:N", "N:1")


def normalised_reference(field: str) -> pl.Expr:
    """The comparable form of reference `field` (see the module docstring); null when nothing is left."""
    text = pl.col(field).cast(pl.String).str.to_uppercase()
    kept = text.str.replace_all(r"[\s-]", "").str.strip_chars_start("0")
    return pl.when(kept == "").then(None).otherwise(kept)


@dataclass(frozen=True)
class Criteria:
    """When two sides agree: currency always; `equal` fields exactly; `references` after normalising;
    amounts within `amount_tolerance_minor` (integer minor units); dates of `date_field` within
    `date_window_days` days (no date criterion when `date_field` is None). An empty field never matches."""

    equal: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    amount_tolerance_minor: int = 0
    date_field: str | None = None
    date_window_days: int = 0

    def __post_init__(self) -> None:
        for name in ("amount_tolerance_minor", "date_window_days"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise InvalidInput(f"{name} must be an integer >= 0, got {value!r}")

    @property
    def fields(self) -> tuple[str, ...]:
        """Record fields the criteria read, besides id, amount and currency."""
        return (*self.equal, *self.references, *((self.date_field,) if self.date_field else ()))


@dataclass(frozen=True)
class Rule:
    """One matching pass. `1:N`: one internal record against a group of external records sharing
    `group_by`; `N:1` the mirror. The group's amount is its sum; every field of `equal` and `references`
    must be a grouping key, so it is one value per group."""

    id: str
    criteria: Criteria
    cardinality: str = "1:1"
    group_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.cardinality not in CARDINALITIES:
            raise InvalidInput(f"rule {self.id!r}: cardinality must be one of {CARDINALITIES}, "
                               f"got {self.cardinality!r}")
        if self.cardinality == "1:1" and self.group_by:
            raise InvalidInput(f"rule {self.id!r}: group_by applies to 1:N and N:1 only")
        if self.cardinality != "1:1":
            if not self.group_by:
                raise InvalidInput(f"rule {self.id!r}: {self.cardinality} needs group_by fields")
            loose = [f for f in (*self.criteria.equal, *self.criteria.references) if f not in self.group_by]
            if loose:
                raise InvalidInput(f"rule {self.id!r}: fields {loose} must be in group_by {self.group_by}")


@dataclass(frozen=True)
class Recon:
    """A named reconciliation: its rules run in this order, each over the records still unmatched."""

    name: str
    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidInput("a reconciliation needs a name")
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise InvalidInput(f"recon {self.name!r}: rule ids must be unique, got {ids}")
