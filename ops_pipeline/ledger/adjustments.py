"""Adjustments: the one way to correct a balance (the ledger is never edited; a correction is a new entry)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ops_pipeline import audit
from ops_pipeline.errors import InvalidInput
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.money import to_minor
from ops_pipeline.workspace import Workspace


@dataclass(frozen=True)
class Adjustment:
    entry: Entry
    posted: bool  # False: the same entry id was already posted with the same content
    lake_version: int


def signed_minor(amount: str, currency: str) -> int:
    """Signed major units ("10.00" credits, "-10.00" debits) to non-zero minor units."""
    text = amount.strip()
    if not text:
        raise InvalidInput("amount: a value is required")
    minor = to_minor(text.lstrip("+-") if text[0] in "+-" else text, currency, allow_zero=False)
    return -minor if text.startswith("-") else minor


def adjust(
    ws: Workspace, merchant_id: str, currency: str, amount_minor: int, reference: str, *, actor: str,
    entry_id: str | None = None, entry_type: str = "adjustment", ingest_id: str | None = None,
) -> Adjustment:
    """Append one ADJUSTMENT entry, audited with who and why; `entry_id` makes it idempotent."""
    if not reference or not reference.strip():
        raise InvalidInput("reference: say why (a ticket, case or document reference)")
    entry = Entry("ADJUSTMENT", entry_id or f"adj-{uuid.uuid4()}", merchant_id, currency, amount_minor,
                  entry_type, reference)
    result = post_entries(ws, [entry], ingest_id=ingest_id or f"adjust-{entry.entry_id}")
    if result.posted:
        with ws.engine.begin() as conn:
            audit.record(conn, actor=actor, entity_type="ledger_entry", entity_id=entry.entry_id,
                         action="adjusted", reason=reference,
                         after={"merchant_id": merchant_id, "currency": currency,
                                "amount_minor": amount_minor, "type": entry_type})
    return Adjustment(entry, bool(result.posted), result.lake_version)
