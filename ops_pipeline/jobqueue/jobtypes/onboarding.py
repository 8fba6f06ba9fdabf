"""Onboarding: a principal (a mall tenant or brand that redeems vouchers) and a distributor (sells them)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ops_pipeline.jobqueue.actions import ActionContext, HttpAction, WriteRecord
from ops_pipeline.jobqueue.jobtypes.base import JobType
from ops_pipeline.jobqueue.jobtypes.fields import (
    BankAccount,
    Contact,
    Currency,
    Entity,
    Id,
    Name,
    Percent,
    Strict,
    UpiVpas,
)


class PrincipalOnboarding(Strict):
    """A new principal: who it is, where it sells, how it is paid (UPI VPAs, bank account), its commission."""

    principal_id: Id
    entity: Entity
    contact: Contact
    mall_id: Id | None = Field(None, description="The mall, when the principal is a tenant of one")
    unit: Name | None = Field(None, description="Shop or unit number in the mall")
    category: Name | None = None
    upi_vpas: UpiVpas = Field(description="UPI VPAs where vouchers are redeemed (encrypted at rest)")
    bank_account: BankAccount = Field(description="Where fund transfers to the principal are paid")
    commission_percent: Percent = Field(description="Commission charged on redemptions at the principal")
    settlement_currency: Currency = "INR"


def _principal(ctx: ActionContext) -> dict:
    a: PrincipalOnboarding = ctx.attributes
    return {
        "legal_name": a.entity.legal_name,
        **a.model_dump(mode="json", exclude={"bank_account"}),
    }


def _principal_record(ctx: ActionContext) -> dict:
    a: PrincipalOnboarding = ctx.attributes
    terms = {"commission_percent": str(a.commission_percent), "settlement_currency": a.settlement_currency}
    return {"kind": "tenant" if a.mall_id else "brand", "name": a.entity.legal_name, "terms": terms,
            **a.model_dump(mode="json", exclude={"commission_percent", "settlement_currency"})}


def _beneficiary(ctx: ActionContext) -> dict:
    a: PrincipalOnboarding = ctx.attributes
    return {"principal_id": a.principal_id, **a.bank_account.model_dump(mode="json")}


PRINCIPAL_ONBOARDING = JobType(
    name="principal_onboarding",
    model=PrincipalOnboarding,
    example={
        "principal_id": "P-CAFE-01",
        "entity": {
            "legal_name": "Bean There Cafe Pvt Ltd",
            "entity_type": "company",
            "pan": "AABCB1234C",
            "gstin": "29AABCB1234C1Z5",
            "address": {
                "line1": "Unit G-12, Orion Mall",
                "city": "Bengaluru",
                "state": "Karnataka",
                "postal_code": "560055",
            },
        },
        "contact": {"name": "Asha Rao", "email": "asha@beanthere.example", "phone": "+919812345678"},
        "category": "Food and beverage",
        "upi_vpas": ["beanthere.g12@okhdfc", "beanthere@ybl"],
        "bank_account": {
            "account_holder": "Bean There Cafe Pvt Ltd",
            "account_number": "50100123456789",
            "ifsc": "HDFC0001234",
        },
        "commission_percent": "2.5",
    },
    description="Onboard a new principal or mall tenant with the partner and register its bank account "
    "with the bank. Needs the approval of a second ops person.",
    needs_approval=True,
    actions=(
        HttpAction("create_principal", "partner", "POST", "/principals", _principal),
        HttpAction("register_beneficiary", "bank", "POST", "/beneficiaries", _beneficiary),
        WriteRecord("principal", _principal_record),
    ),
)


class ProgramAssociation(Strict):
    program_id: Id
    commission_percent: Percent = Field(description="The distributor's commission on this program's sales")


class WalletSetup(Strict):
    currency: Currency = "INR"


class DistributorOnboarding(Strict):
    """A new distributor: entity, programs it sells with their commissions, its wallet and bank account."""

    distributor_id: Id = Field(description="Also the ledger merchant_id holding its wallet balance")
    entity: Entity
    contact: Contact
    programs: Annotated[list[ProgramAssociation], Field(min_length=1, max_length=500)]
    wallet: WalletSetup = WalletSetup()
    bank_account: BankAccount = Field(description="Debited (direct-debit mandate) to replenish the wallet")


def _distributor(ctx: ActionContext) -> dict:
    a: DistributorOnboarding = ctx.attributes
    return {
        "legal_name": a.entity.legal_name,
        **a.model_dump(mode="json", exclude={"bank_account", "wallet"}),
    }


def _party_record(ctx: ActionContext) -> dict:
    a: DistributorOnboarding = ctx.attributes
    return {"party_id": a.distributor_id, "kind": "distributor", "name": a.entity.legal_name,
            **a.model_dump(mode="json", exclude={"distributor_id", "programs"})}


def _wallet(ctx: ActionContext) -> dict:
    a: DistributorOnboarding = ctx.attributes
    return {"distributor_id": a.distributor_id, "currency": a.wallet.currency}


def _mandate(ctx: ActionContext) -> dict:
    a: DistributorOnboarding = ctx.attributes
    return {"distributor_id": a.distributor_id, **a.bank_account.model_dump(mode="json")}


DISTRIBUTOR_ONBOARDING = JobType(
    name="distributor_onboarding",
    model=DistributorOnboarding,
    example={
        "distributor_id": "D-GIFTLY",
        "entity": {
            "legal_name": "Giftly Distribution LLP",
            "entity_type": "llp",
            "address": {
                "line1": "4th floor, 12 MG Road",
                "city": "Bengaluru",
                "state": "Karnataka",
                "postal_code": "560001",
            },
        },
        "contact": {"name": "Vikram Shah", "email": "ops@giftly.example", "phone": "+919900112233"},
        "programs": [{"program_id": "GC-ORION-FESTIVE", "commission_percent": "3"}],
        "wallet": {"currency": "INR"},
        "bank_account": {
            "account_holder": "Giftly Distribution LLP",
            "account_number": "000405012345",
            "ifsc": "ICIC0000456",
        },
    },
    description="Onboard a distributor with the partner (programs and commissions), open its wallet, and "
    "register a direct-debit mandate on its bank account for wallet replenishment.",
    actions=(
        HttpAction("create_distributor", "partner", "POST", "/distributors", _distributor),
        HttpAction("open_wallet", "partner", "POST", "/wallets", _wallet),
        HttpAction("register_mandate", "bank", "POST", "/mandates", _mandate),
        WriteRecord("party", _party_record),
    ),
)
