"""Bank statements: parse SWIFT MT940 and ISO 20022 camt.053 into entries, load them into the lake."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

DIRECTIONS = ("D", "C", "RD", "RC")  # debit, credit, reversal of a debit (money back in), of a credit


@dataclass(frozen=True)
class Entry:
    """One booked line of a statement; `amount_minor` is the magnitude, `direction` says which way."""

    statement_ref: str
    account: str
    entry_date: date
    value_date: date
    amount_minor: int
    currency: str
    direction: str
    customer_reference: str | None
    bank_reference: str | None
    entry_reference: str | None
    details: str | None
    raw: str
