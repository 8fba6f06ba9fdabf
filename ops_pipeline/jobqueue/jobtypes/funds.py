"""Money movements: distributor wallet top-up and replenishment (credited in the ledger), fund transfer
to a principal (paid by the bank)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from ops_pipeline.jobqueue.actions import ActionContext, CreditWalletInLedger, HttpAction
from ops_pipeline.jobqueue.jobtypes.base import JobType
from ops_pipeline.jobqueue.jobtypes.fields import Funds, Id, Name

BankReference = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{6,40}$", max_length=40)]


class WalletTopup(Funds):
    """A deposit the distributor made to our bank account, to be credited to its wallet."""

    distributor_id: Id = Field(description="The distributor, also the ledger merchant_id of its wallet")
    bank_reference: BankReference = Field(description="The bank's reference (e.g. UTR) of the deposit")


class WalletReplenishment(Funds):
    """An amount to collect from the distributor's bank account (its mandate) into its wallet."""

    distributor_id: Id
    reason: Name | None = None


class FundTransfer(Funds):
    principal_id: Id
    purpose: Annotated[str, StringConstraints(min_length=1, max_length=140)]


def _funds(ctx: ActionContext) -> dict:
    return ctx.attributes.model_dump(mode="json", include={"amount", "currency"})


def _deposit(ctx: ActionContext) -> dict:
    claim = {"reference": ctx.attributes.bank_reference, "claimed_by": f"job-{ctx.job.id}"}
    return {**claim, **_funds(ctx)}


def _collection(ctx: ActionContext) -> dict:
    return {"distributor_id": ctx.attributes.distributor_id, **_funds(ctx)}


def _credit(ctx: ActionContext) -> dict:
    return {"reference": ctx.produced("reference"), **_funds(ctx)}


def _transfer(ctx: ActionContext) -> dict:
    return ctx.attributes.model_dump(mode="json")


CREDIT_ACTIONS = (
    CreditWalletInLedger(),
    HttpAction("credit_wallet", "partner", "POST", "/wallets/{distributor_id}/credits", _credit),
)

DISTRIBUTOR_WALLET_TOPUP = JobType(
    name="distributor_wallet_topup",
    model=WalletTopup,
    example={
        "distributor_id": "D-GIFTLY",
        "currency": "INR",
        "amount": "25000.00",
        "bank_reference": "UTR2026112100001",
    },
    description="Verify a distributor's deposit with the bank, credit its wallet in the ledger (an "
    "ADJUSTMENT entry, once per job) and with the partner.",
    actions=(HttpAction("verify_deposit", "bank", "POST", "/deposits/verify", _deposit), *CREDIT_ACTIONS),
)

DISTRIBUTOR_WALLET_REPLENISHMENT = JobType(
    name="distributor_wallet_replenishment",
    model=WalletReplenishment,
    example={
        "distributor_id": "D-GIFTLY",
        "currency": "INR",
        "amount": "40000.00",
        "reason": "wallet below threshold",
    },
    description="Collect an amount from a distributor's bank account through its mandate, then credit its "
    "wallet in the ledger and with the partner. Created by the wallet-low rule.",
    actions=(HttpAction("collect_deposit", "bank", "POST", "/collections", _collection), *CREDIT_ACTIONS),
)

FUND_TRANSFER_TO_PRINCIPAL = JobType(
    name="fund_transfer_to_principal",
    model=FundTransfer,
    example={
        "principal_id": "P-CAFE-01",
        "currency": "INR",
        "amount": "12500.00",
        "purpose": "Redemptions 2026-11-20",
    },
    description="Pay a principal through the bank, to the account registered at its onboarding.",
    actions=(HttpAction("transfer_funds", "bank", "POST", "/transfers", _transfer),),
)
