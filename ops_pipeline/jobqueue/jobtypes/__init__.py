"""The registry of job types: what each takes, whether it needs approval, and the actions it runs."""

from __future__ import annotations

from typing import Any

from ops_pipeline.errors import InvalidInput
from ops_pipeline.jobqueue.jobtypes.base import JobType, Sensitive
from ops_pipeline.jobqueue.jobtypes.distribution import VOUCHER_DISTRIBUTION
from ops_pipeline.jobqueue.jobtypes.funds import (
    DISTRIBUTOR_WALLET_REPLENISHMENT,
    DISTRIBUTOR_WALLET_TOPUP,
    FUND_TRANSFER_TO_PRINCIPAL,
)
from ops_pipeline.jobqueue.jobtypes.manual import MANUAL
from ops_pipeline.jobqueue.jobtypes.obligations import PRINCIPAL_OBLIGATION_PAYMENT
from ops_pipeline.jobqueue.jobtypes.onboarding import DISTRIBUTOR_ONBOARDING, PRINCIPAL_ONBOARDING
from ops_pipeline.jobqueue.jobtypes.programs import GIFT_CARD_PROGRAM_CREATION, VOUCHER_RESTRICTION_PUSH
from ops_pipeline.jobqueue.jobtypes.recon import DAILY_RECONCILIATION

JOB_TYPES: dict[str, JobType] = {
    t.name: t
    for t in (
        PRINCIPAL_ONBOARDING,
        GIFT_CARD_PROGRAM_CREATION,
        DISTRIBUTOR_ONBOARDING,
        DISTRIBUTOR_WALLET_TOPUP,
        DISTRIBUTOR_WALLET_REPLENISHMENT,
        FUND_TRANSFER_TO_PRINCIPAL,
        VOUCHER_RESTRICTION_PUSH,
        VOUCHER_DISTRIBUTION,
        PRINCIPAL_OBLIGATION_PAYMENT,
        DAILY_RECONCILIATION,
        MANUAL,
    )
}
AUTOMATED_TYPES = tuple(name for name, t in JOB_TYPES.items() if t.automated)


def get_type(name: Any) -> JobType:
    """The job type called `name`; InvalidInput naming `type` and the known ones."""
    try:
        return JOB_TYPES[name]
    except (KeyError, TypeError):
        raise InvalidInput(f"type: {name!r} is not one of {', '.join(JOB_TYPES)}") from None


def job_types_catalog() -> list[dict[str, Any]]:
    """Every type with the JSON Schema of its attributes and whether it needs approval.

    What `GET /api/job/types` answers, so a form or a client can be built from it.
    """
    return [t.describe() for t in JOB_TYPES.values()]


__all__ = ["AUTOMATED_TYPES", "JOB_TYPES", "JobType", "Sensitive", "get_type", "job_types_catalog"]
