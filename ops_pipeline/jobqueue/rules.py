"""The rule agent: jobs created from operational facts (created_by_kind "rule").

Rule `wallet-low`: a distributor's wallet is its ledger balance (merchant_id = distributor_id) in a
currency. When its available balance is below the configured threshold, one
`distributor_wallet_replenishment` job is created to bring it back to the target. Its idempotency key
`rule:wallet-low:{distributor}:{currency}` is held while that job is live, so evaluating again, or on
two machines at once, never creates a second job; once the job has finished, a wallet still low gets
a new one.

The thresholds come from configuration (the CLI and Dagster adapters pass them), e.g.
`[{"distributor_id": "D1", "currency": "INR", "threshold": "10000.00", "target": "50000.00"}]`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError, model_validator

from ops_pipeline.errors import InvalidInput, NotFound
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.jobtypes.base import describe
from ops_pipeline.jobqueue.jobtypes.fields import (
    Amount,
    Currency,
    Id,
    NonNegativeAmount,
    Strict,
    check_decimals,
)
from ops_pipeline.ledger.balances import get_balances
from ops_pipeline.money import to_major, to_minor
from ops_pipeline.workspace import Workspace

log = logging.getLogger(__name__)

WALLET_LOW = "wallet-low"
REPLENISHMENT = "distributor_wallet_replenishment"


class WalletThreshold(Strict):
    distributor_id: Id
    currency: Currency = "INR"
    threshold: NonNegativeAmount
    target: Amount
    priority: Literal["High", "Medium", "Low"] = "High"

    @model_validator(mode="after")
    def _consistent(self) -> WalletThreshold:
        for value in (self.threshold, self.target):
            check_decimals(value, self.currency)
        if self.target <= self.threshold:
            raise ValueError(f"target {self.target} must be above threshold {self.threshold}")
        return self


_THRESHOLDS = TypeAdapter(list[WalletThreshold])


def parse_thresholds(config: Any) -> list[WalletThreshold]:
    """Thresholds from configuration (a list of objects); InvalidInput naming the entry and field."""
    try:
        return _THRESHOLDS.validate_python(config)
    except ValidationError as exc:
        raise InvalidInput(describe(exc, root="thresholds")) from None


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    subject: str  # e.g. "D1/INR"
    observed: Decimal  # the available balance
    threshold: Decimal
    job_id: int | None  # the replenishment job, new or already live; None when the wallet is fine
    created: bool


def _available_minor(ws: Workspace, merchant_id: str, currency: str) -> int:
    try:
        return get_balances(ws, merchant_id, currency)[0].available_minor
    except NotFound:  # no entry yet: an empty wallet
        return 0


def wallet_low(ws: Workspace, thresholds: Iterable[WalletThreshold]) -> list[RuleOutcome]:
    """Evaluate the wallet-low rule for each configured wallet; at most one live job per wallet."""
    outcomes = []
    for t in thresholds:
        available = _available_minor(ws, t.distributor_id, t.currency)
        observed = to_major(available, t.currency)
        subject = f"{t.distributor_id}/{t.currency}"
        if available >= to_minor(t.threshold, t.currency):
            outcomes.append(RuleOutcome(WALLET_LOW, subject, observed, t.threshold, None, False))
            continue
        amount = to_major(to_minor(t.target, t.currency) - available, t.currency)
        job, created = service.create_job(
            ws,
            type=REPLENISHMENT,
            attributes={
                "distributor_id": t.distributor_id,
                "currency": t.currency,
                "amount": str(amount),
                "reason": f"wallet {observed} {t.currency} below threshold {t.threshold}",
            },
            priority=t.priority,
            idempotency_key=f"rule:{WALLET_LOW}:{t.distributor_id}:{t.currency}",
            actor=f"rule:{WALLET_LOW}",
            actor_kind="rule",
        )
        if created:
            log.info("rule %s: %s at %s: job %s to add %s", WALLET_LOW, subject, observed, job.id, amount)
        outcomes.append(RuleOutcome(WALLET_LOW, subject, observed, t.threshold, job.id, created))
    return outcomes
