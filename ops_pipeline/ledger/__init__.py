"""The balances ledger: split payment operations into an append-only log; balances, holds, replay."""

KINDS = {"confirmed": "CO", "reconciled": "RO"}
SOURCES = ("CO", "RO", "PAYOUT", "ADJUSTMENT")
# their split rules: ledger/split.py
OPERATION_TYPES = ("capture", "refund", "chargeback", "chargeback_reversal", "withdrawal", "cashback",
                   "reserve", "reserve_release", "fee_adjustment")
# entries that move money into (-) and out of (+) the merchant's reserve (docs/ledger.md "reserve")
RESERVE_TYPES = ("reserve", "reserve_release", "rolling_reserve", "reserve_expiry")
