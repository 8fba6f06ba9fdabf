"""Payment of an obligation to a principal (`giftcards.obligations`): validated, then transferred by the bank
with the obligation id as reference. Four eyes: it needs a second person's approval.

`validate_obligation` checks the amount (the job's, the stored one and the one computed again now) and the
principal's bank details, and marks the obligation `transfer_requested` by this job (a second job for it is
refused; the same job again finds what it did); `initiate_transfer` sends it (Idempotency-Key from the job
id, so a retry or a lost answer never sends twice; the bank also refuses a second live transfer with the
same reference) and marks it `sent`.
The obligation becomes `paid` later, by confirmation (`obligations.confirm`), never by this job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from ops_pipeline.errors import OpsError
from ops_pipeline.jobqueue.actions import ActionContext, ActionError
from ops_pipeline.jobqueue.jobtypes.base import JobType
from ops_pipeline.jobqueue.jobtypes.fields import Funds, Id
from ops_pipeline.money import to_major, to_minor


class ObligationPayment(Funds):
    """An obligation to pay, with the amount the requester saw (it must still be what is owed)."""

    obligation_id: Id = Field(description="The obligation (see `giftcards obligations compute`)")


def _payment(ctx: ActionContext):
    from ops_pipeline.giftcards import obligations  # giftcards imports the job types: not at the top

    a: ObligationPayment = ctx.attributes
    try:
        return obligations.request_transfer(ctx.ws, a.obligation_id, to_minor(a.amount, a.currency),
                                            a.currency, ctx.job.id, f"job:{ctx.job.id}")
    except OpsError as exc:
        raise ActionError(str(exc), retryable=False) from None


@dataclass(frozen=True)
class ValidateObligation:
    name: str = "validate_obligation"

    def run(self, ctx: ActionContext) -> dict[str, Any]:
        p = _payment(ctx)
        return {"obligation_id": p.obligation_id, "principal_id": p.principal_id, "attempt": p.attempt}


@dataclass(frozen=True)
class InitiateTransfer:
    name: str = "initiate_transfer"

    def run(self, ctx: ActionContext) -> dict[str, Any]:
        from ops_pipeline.giftcards import obligations

        p = _payment(ctx)  # checked again: the obligation may have changed since validation
        if p.transfer_id is not None:  # sent by this job before its progress was saved
            return {"transfer_id": p.transfer_id, "status": "sent before"}
        body = {"principal_id": p.principal_id, "reference": p.obligation_id, "currency": p.currency,
                "amount": str(to_major(p.amount_minor, p.currency)), "account": p.account,
                "purpose": f"gift-card obligation {p.obligation_id}"}
        answer = ctx.request("bank", self.name, "POST", "/transfers", body)
        try:
            obligations.mark_sent(ctx.ws, p.obligation_id, ctx.job.id, answer["transfer_id"],
                                  f"job:{ctx.job.id}")
        except OpsError as exc:
            raise ActionError(str(exc), retryable=False) from None
        return {"transfer_id": answer["transfer_id"], "status": answer.get("status")}


PRINCIPAL_OBLIGATION_PAYMENT = JobType(
    name="principal_obligation_payment",
    model=ObligationPayment,
    example={"obligation_id": "GCO-0123456789ABCDEF0123", "currency": "INR", "amount": "12187.50"},
    description="Pay a principal what an obligation says it is owed: validate the amount and its bank "
    "details, then transfer through the bank with the obligation id as reference. Paid only once the bank "
    "reports it completed and the statement shows it (confirmation).",
    actions=(ValidateObligation(), InitiateTransfer()),
    needs_approval=True,
)
