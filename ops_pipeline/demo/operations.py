"""The demo world's operations, made one at a time: captures, refunds and the ledger's other types, each
naming what it refers to as the ledger's rules need (ledger/references.py), with the day its RO arrives."""

from __future__ import annotations

import random
from datetime import datetime

from ops_pipeline.ledger.references import REVERSALS
from ops_pipeline.money import exponent, to_major, to_minor

TYPICAL_AMOUNT = {"EUR": 60, "USD": 70, "GBP": 50, "JPY": 8000, "BHD": 25}
LAGS = (1,) * 40 + (2,) * 30 + (3,) * 29 + (5,)  # days to the RO; 5 is past every PSP's window: late
UNRECONCILED = 0.002  # the share of operations never reconciled
# The share of each type among the operations; the rest are captures, and so is a type with nothing to name
# yet (no capture, no chargeback or reserve left to reverse).
SHARES = {"refund": 0.08, "chargeback": 0.006, "chargeback_reversal": 0.0015, "withdrawal": 0.008,
          "cashback": 0.012, "reserve": 0.002, "reserve_release": 0.001, "fee_adjustment": 0.003}
KINDS = ("capture", *SHARES)
WEIGHTS = (1 - sum(SHARES.values()), *SHARES.values())

Made = tuple[list[str], int]  # (row, the first day its RO may arrive: 0 for any day)


class Operations:
    """Makes the world's operations in order and remembers what later ones may name.

    Shops in `late` (their merchant context arrives late) get captures and refunds only, so no operation
    of the other types waits in quarantine for its context. An operation whose RO will be a unit off its
    CO (`exact` false) neither reverses nor is reversed: the rules compare amounts within a source.
    """

    def __init__(self, rng: random.Random, shops: list[tuple], late: list[tuple]):
        self.rng = rng
        self.shops = shops
        self.late = set(late)
        self.on_time = [s for s in shops if s not in self.late]
        self.captures: list[list[str]] = []  # refunds may name any
        self.on_time_captures: list[list[str]] = []
        # reconciled chargebacks and reserves not reversed yet, with the day their RO arrives
        self.open: dict[str, list[Made]] = {t: [] for t, _, _ in REVERSALS.values()}

    def make(self, op_id: str, at: datetime, day: int, exact: bool) -> tuple[list[str], int | None]:
        """The next operation's row and the day its RO arrives (None: never)."""
        when = at.isoformat().replace("+00:00", "Z")
        row, after = self._made(self.rng.choices(KINDS, WEIGHTS)[0], op_id, when, exact) or self._capture(
            op_id, when)
        if self.rng.random() < UNRECONCILED:
            return row, None
        ro_day = max(day + self.rng.choice(LAGS), after)  # a reversal's RO not before its original's
        if exact and row[2] in self.open:
            self.open[row[2]].append((row, ro_day))
        return row, ro_day

    def _made(self, kind: str, op_id: str, when: str, exact: bool) -> Made | None:
        """An operation of `kind`, or None when there is nothing for it to name."""
        pick = self.rng.choice
        match kind:
            case "refund":
                return self._naming(self.captures, op_id, when, kind, pick((100, 50)))
            case "chargeback":
                return self._naming(self.on_time_captures, op_id, when, kind, 100)
            case "cashback":  # a few percent of a capture, funded by the merchant
                return self._naming(self.on_time_captures, op_id, when, kind, pick((2, 5)))
            case "chargeback_reversal" | "reserve_release":  # the whole chargeback; half the reserve
                return self._reversal(op_id, when, kind, 100 if kind == "chargeback_reversal" else 50, exact)
            case "withdrawal":
                return self._on_shop(op_id, when, kind, 500)
            case "reserve":
                return self._on_shop(op_id, when, kind, 1000)
            case "fee_adjustment":  # a little fee given back or charged
                return self._on_shop(op_id, when, kind, 2, pick((1, -1)))
        return None

    def _capture(self, op_id: str, when: str) -> Made:
        shop = self.rng.choice(self.shops)
        row = self._row(op_id, f"psp-ref-{self.rng.getrandbits(40):010x}", "capture", self._amount(shop[3]),
                        when, shop[3], shop[:3])
        self.captures.append(row)
        if shop not in self.late:
            self.on_time_captures.append(row)
        return row, 0

    def _naming(self, captures: list[list[str]], op_id: str, when: str, kind: str, percent: int
                ) -> Made | None:
        """A `kind` of `percent` of a random capture among `captures`, naming its PSP reference."""
        if not captures:
            return None
        original = self.rng.choice(captures)
        return self._row(op_id, original[1], kind, _percent(original, percent), when, original[4],
                         original[6:]), 0

    def _reversal(self, op_id: str, when: str, kind: str, percent: int, exact: bool) -> Made | None:
        """A `kind` of `percent` of a random open original, naming its id; the original is closed."""
        originals = self.open[REVERSALS[kind][0]]
        if not (exact and originals):
            return None
        original, ro_day = originals.pop(self.rng.randrange(len(originals)))
        return self._row(op_id, original[0], kind, _percent(original, percent), when, original[4],
                         original[6:]), ro_day

    def _on_shop(self, op_id: str, when: str, kind: str, percent: int, sign: int = 1) -> Made:
        """A `kind` of a random on-time shop, around `percent` of the typical amount."""
        shop = self.rng.choice(self.on_time)
        return self._row(op_id, f"{kind}-{self.rng.getrandbits(40):010x}", kind,
                         sign * self._amount(shop[3], percent), when, shop[3], shop[:3]), 0

    def _amount(self, currency: str, percent: int = 100) -> int:
        """A random amount in minor units around `percent` of the currency's typical one."""
        typical = TYPICAL_AMOUNT[currency] * 10 ** exponent(currency) * percent // 100
        return max(1, round(self.rng.lognormvariate(0, 0.9) * typical))

    @staticmethod
    def _row(op_id: str, ref: str, kind: str, minor: int, when: str, currency: str, key) -> list[str]:
        return [op_id, ref, kind, str(to_major(minor, currency)), currency, when, *key]


def _percent(row: list[str], percent: int) -> int:
    """`percent` of an operation row's amount in minor units, at least one."""
    return max(1, to_minor(row[3], row[4]) * percent // 100)
