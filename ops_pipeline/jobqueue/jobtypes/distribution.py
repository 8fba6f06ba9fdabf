"""Voucher distribution: issue vouchers of a program to a distributor assigned to it and debit its wallet.

Three actions, each safe to run again: `reserve_wallet` prices the vouchers and holds the total on the
wallet (hold id from the job id; a short wallet fails the job for good, naming the amounts);
`issue_vouchers` issues them as distributed (voucher ids from the job id, so a retry finds them issued;
refused, it releases the hold);
`debit_wallet` posts the debit (entry id from the job id) and captures the hold. Every check that can
refuse the job runs before anything is issued or debited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import Field

from ops_pipeline.errors import Conflict, InsufficientFunds, OpsError
from ops_pipeline.jobqueue.actions import ActionContext, ActionError
from ops_pipeline.jobqueue.jobtypes.base import JobType
from ops_pipeline.jobqueue.jobtypes.fields import Amount, Id, Strict
from ops_pipeline.ledger import adjustments, holds
from ops_pipeline.ledger.balances import available_all
from ops_pipeline.money import to_major

MAX_COUNT = 10_000  # vouchers per job (the most one issue call makes)


class VoucherDistribution(Strict):
    """Vouchers of a program for a distributor, paid from its wallet at the price its assignment gives."""

    distributor_id: Id = Field(description="The party (distributor or B2B customer) receiving the vouchers")
    program_id: Id
    face_value: Amount = Field(description="One of the program's denominations, or within its range")
    count: Annotated[int, Field(ge=1, le=MAX_COUNT)]
    on: date | None = Field(None, description="The day the assignment must be in force (default: the day "
                            "the job was created, in OPS_TIMEZONE)")


def _quote(ctx: ActionContext):
    from ops_pipeline.giftcards.distribution import quote  # giftcards imports the job types

    a: VoucherDistribution = ctx.attributes
    on = a.on or ctx.job.created_at.astimezone(ctx.ws.settings.tz).date()
    try:
        return quote(ctx.ws, a.distributor_id, a.program_id, a.face_value, a.count, on)
    except OpsError as exc:
        raise ActionError(str(exc), retryable=False) from None


@dataclass(frozen=True)
class ReserveWallet:
    name: str = "reserve_wallet"

    def run(self, ctx: ActionContext) -> dict[str, Any]:
        q = _quote(ctx)
        try:
            hold = holds.place_hold(ctx.ws, q.wallet_account_id, q.currency, q.total_minor,
                                    actor=f"job:{ctx.job.id}", hold_id=ctx.idempotency_key(self.name),
                                    reason="voucher distribution", reference=f"job-{ctx.job.id}")
        except InsufficientFunds:
            with ctx.ws.engine.connect() as conn:
                balances = available_all(conn, datetime.now(UTC), [q.wallet_account_id])
            available = balances.get((q.wallet_account_id, q.currency), 0)
            raise ActionError(f"wallet {q.wallet_account_id!r} is short: available {q.amount(available)}, "
                              f"needed {q.amount(q.total_minor)} ({q.count} vouchers at "
                              f"{q.amount(q.unit_price_minor)})", retryable=False) from None
        return {"hold_id": hold.hold_id, "wallet_account_id": q.wallet_account_id, "currency": q.currency,
                "unit_price_minor": q.unit_price_minor, "total_minor": q.total_minor,
                "assignment_id": q.assignment_id}


@dataclass(frozen=True)
class IssueVouchers:
    name: str = "issue_vouchers"

    def run(self, ctx: ActionContext) -> dict[str, Any]:
        from ops_pipeline.giftcards import vouchers  # giftcards imports the job types: not at the top

        a: VoucherDistribution = ctx.attributes
        reserved = ctx.results["reserve_wallet"]
        key = ctx.idempotency_key(self.name)
        ids = [vouchers.new_voucher_id(f"{key}-{i}") for i in range(a.count)]
        price = to_major(reserved["unit_price_minor"], reserved["currency"])
        hold = holds.get_hold(ctx.ws, reserved["hold_id"])
        if hold.status not in (holds.ACTIVE, holds.CAPTURED):  # captured: issued and debited already
            raise ActionError(f"the reservation {hold.hold_id} is {hold.status}: distribute with a new job",
                              retryable=False)
        try:
            issued = vouchers.issue(ctx.ws, a.program_id, a.face_value, a.count, price, f"job:{ctx.job.id}",
                                    a.distributor_id, distributed=True, voucher_ids=ids)
        except OpsError as exc:  # e.g. the program was made inactive since the reservation: free the wallet
            holds.end_hold(ctx.ws, hold.hold_id, actor=f"job:{ctx.job.id}", reason=str(exc))
            raise ActionError(str(exc), retryable=False) from None
        return {"vouchers": len(issued), "first_voucher_id": ids[0], "last_voucher_id": ids[-1]}


@dataclass(frozen=True)
class DebitWallet:
    name: str = "debit_wallet"

    def run(self, ctx: ActionContext) -> dict[str, Any]:
        a: VoucherDistribution = ctx.attributes
        r = ctx.results["reserve_wallet"]
        try:
            done = adjustments.adjust(
                ctx.ws, r["wallet_account_id"], r["currency"], -r["total_minor"],
                f"job {ctx.job.id}: {a.count} vouchers of {a.program_id}", actor=f"job:{ctx.job.id}",
                entry_id=ctx.idempotency_key(self.name), entry_type="voucher_purchase",
                ingest_id=f"job-{ctx.job.id}-debit")
        except Conflict as exc:
            raise ActionError(f"ledger: {exc}", retryable=False) from None
        if holds.get_hold(ctx.ws, r["hold_id"]).status == holds.ACTIVE:
            holds.end_hold(ctx.ws, r["hold_id"], actor=f"job:{ctx.job.id}", status=holds.CAPTURED,
                           reason=f"debited by {done.entry.entry_id}")
        return {"entry_id": done.entry.entry_id, "posted": int(done.posted)}


VOUCHER_DISTRIBUTION = JobType(
    name="voucher_distribution",
    model=VoucherDistribution,
    example={"distributor_id": "D-GIFTLY", "program_id": "GC-ORION-FESTIVE", "face_value": "500.00",
             "count": 10},
    description="Issue vouchers of a program to a distributor assigned to it, at the price of its "
    "agreement, and debit its wallet in the ledger once; refused when the wallet is short.",
    actions=(ReserveWallet(), IssueVouchers(), DebitWallet()),
)
