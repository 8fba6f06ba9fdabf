"""The balances ledger: split payment operations into an append-only log; balances, holds, replay."""

KINDS = {"confirmed": "CO", "reconciled": "RO"}
SOURCES = ("CO", "RO", "PAYOUT", "ADJUSTMENT")
OPERATION_TYPES = ("capture", "refund")
