"""What the console's merchant page shows, read in one go: exact balances (the function behind
`GET /api/balances/{merchant}`), holds and the latest log entries."""

from __future__ import annotations

from dataclasses import dataclass

from ops_pipeline.ledger import holds, queries
from ops_pipeline.ledger.balances import Balance, get_balances
from ops_pipeline.workspace import Workspace


@dataclass(frozen=True)
class MerchantLedger:
    balances: list[Balance]
    holds: list[holds.Hold]
    entries: list[queries.LogEntry]


def merchant_ledger(ws: Workspace, merchant_id: str) -> MerchantLedger:
    """Balances first: an unknown merchant is a NotFound before anything else is read."""
    found = get_balances(ws, merchant_id)
    return MerchantLedger(found, holds.merchant_holds(ws, merchant_id),
                          queries.recent_entries(ws, merchant_id))
