"""The numbers of a finance report, typed; amounts are integer minor units."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

KINDS = ("daily", "monthly")
FORMATS = ("html", "xlsx")
STATUSES = ("matched", "matched_with_difference", "unmatched", "manual")


@dataclass(frozen=True)
class SummaryRow:
    """One reconciliation, currency and status (unmatched: either side) over the report's dates."""

    recon: str
    currency: str
    status: str
    count: int
    internal_minor: int
    external_minor: int
    difference_minor: int


@dataclass(frozen=True)
class BreakRow:
    """An open break (an unmatched row of the latest run of its date), or a matched-with-difference row."""

    break_id: str
    recon: str
    business_date: date
    status: str
    currency: str
    internal_minor: int
    external_minor: int
    difference_minor: int
    age_days: int
    internal_ids: str
    external_ids: str
    reason: str


@dataclass(frozen=True)
class AgingRow:
    bucket: str
    currency: str
    count: int
    amount_minor: int


@dataclass(frozen=True)
class DayCount:
    day: date
    matched: int  # matched, matched with a difference, or decided (manual)
    unmatched: int


@dataclass(frozen=True)
class Movement:
    """Opening + movements by type = closing, per merchant, currency and basis (confirmed or settled balance);
    `ledger_minor` is the ledger's own fold of the log up to the month's end."""

    merchant_id: str
    currency: str
    basis: str
    opening_minor: int
    by_type: dict[str, int]
    closing_minor: int
    ledger_minor: int

    @property
    def ties(self) -> bool:
        return self.closing_minor == self.ledger_minor


@dataclass(frozen=True)
class Section:
    """A table another domain adds to a report (see reports/sections.py): a cell is text, a number, a date,
    or an amount as (minor units, currency). `key` is the HTML id and the XLSX sheet name (<= 31 chars)."""

    key: str
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple, ...]
    note: str = ""


@dataclass(frozen=True)
class Report:
    kind: str
    period: str  # YYYY-MM-DD or YYYY-MM
    first: date
    last: date
    summary: list[SummaryRow]
    days: list[DayCount]
    aging: list[AgingRow] = field(default_factory=list)
    breaks: list[BreakRow] = field(default_factory=list)
    breaks_total: int = 0
    differences: list[BreakRow] = field(default_factory=list)
    movements: list[Movement] = field(default_factory=list)
    movement_types: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


@dataclass(frozen=True)
class Built:
    """What a build wrote: the files, the summary, and (monthly) how many balances tie to the ledger."""

    kind: str
    period: str
    files: tuple[Path, ...]
    summary: tuple[SummaryRow, ...]
    breaks: int
    balances: int
    untied: int
    built_at: datetime


@dataclass(frozen=True)
class ReportFile:
    kind: str
    period: str
    format: str
    size: int
    built_at: datetime
    path: Path
