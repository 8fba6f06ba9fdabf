"""The balances ledger: split payment operations into an append-only log; balances, holds, replay."""

KINDS = {"confirmed": "CO", "reconciled": "RO"}
SOURCES = ("CO", "RO", "PAYOUT", "ADJUSTMENT")
# their split rules: ledger/split.py
OPERATION_TYPES = ("capture", "refund", "chargeback", "chargeback_reversal", "withdrawal", "cashback",
                   "reserve", "reserve_release", "fee_adjustment")
