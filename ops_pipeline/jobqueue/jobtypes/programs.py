"""Gift card programs: creating one (pricing, discounts, marketing, principals) and pushing the UPI VPAs
where its vouchers may be spent to the bank."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_core.core_schema import ValidationInfo

from ops_pipeline.jobqueue.actions import ActionContext, HttpAction, WriteRecord
from ops_pipeline.jobqueue.jobtypes.base import JobType
from ops_pipeline.jobqueue.jobtypes.fields import (
    Amount,
    Currency,
    Discount,
    Id,
    MarketingMaterial,
    Name,
    Percent,
    Strict,
    UpiVpas,
    check_decimals,
)


class Pricing(Strict):
    """Fixed denominations, or any value between `min_value` and `max_value`; plus an issuance fee."""

    denominations: Annotated[list[Amount], Field(max_length=50)] = Field(default_factory=list)
    min_value: Amount | None = None
    max_value: Amount | None = None
    issuance_fee_percent: Percent = Decimal(0)

    @model_validator(mode="after")
    def _one_scheme(self) -> Pricing:
        if not self.denominations and (self.min_value is None or self.max_value is None):
            raise ValueError("give denominations, or both min_value and max_value")
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            raise ValueError(f"min_value {self.min_value} is above max_value {self.max_value}")
        return self


class GiftCardProgramCreation(Strict):
    program_id: Id
    name: Name
    currency: Currency = "INR"
    principal_ids: Annotated[
        list[Id], Field(min_length=1, max_length=5_000, description="Principals where cards are redeemed")
    ]
    pricing: Pricing
    discounts: Annotated[list[Discount], Field(max_length=20)] = Field(default_factory=list)
    validity_days: Annotated[int, Field(ge=1, le=3650)] = 365
    marketing: MarketingMaterial = MarketingMaterial()

    @field_validator("pricing")
    @classmethod
    def _pricing_decimals(cls, pricing: Pricing, info: ValidationInfo) -> Pricing:
        currency = info.data.get("currency")
        for value in (*pricing.denominations, pricing.min_value, pricing.max_value):
            if value is not None:
                check_decimals(value, currency)
        return pricing

    @field_validator("discounts")
    @classmethod
    def _discount_decimals(cls, discounts: list[Discount], info: ValidationInfo) -> list[Discount]:
        for discount in discounts:
            check_decimals(discount.min_order_value, info.data.get("currency"))
        return discounts


def _program(ctx: ActionContext) -> dict:
    return ctx.attributes.model_dump(mode="json", exclude={"principal_ids"})


def _associations(ctx: ActionContext) -> dict:
    return {"principal_ids": ctx.attributes.principal_ids}


GIFT_CARD_PROGRAM_CREATION = JobType(
    name="gift_card_program_creation",
    model=GiftCardProgramCreation,
    example={
        "program_id": "GC-ORION-FESTIVE",
        "name": "Orion Festive Gift Card",
        "currency": "INR",
        "principal_ids": ["P-CAFE-01"],
        "pricing": {"denominations": ["500.00", "1000.00", "2000.00"], "issuance_fee_percent": "0"},
        "discounts": [{"name": "Diwali", "percent": "5", "starts_on": "2026-10-20", "ends_on": "2026-11-10"}],
        "validity_days": 365,
        "marketing": {
            "headline": "Give the whole mall",
            "description": "Redeemable at every participating store of Orion Mall.",
            "terms_url": "https://orion.example/giftcard/terms",
            "image_urls": ["https://orion.example/giftcard/festive.png"],
        },
    },
    description="Create a gift card program with the partner (pricing, discounts, validity, marketing "
    "material), then associate the principals where its cards are redeemed.",
    actions=(
        HttpAction("create_program", "partner", "POST", "/programs", _program),
        HttpAction(
            "associate_principals", "partner", "POST", "/programs/{program_id}/principals", _associations
        ),
        WriteRecord("program", lambda ctx: ctx.attributes.model_dump(mode="json")),
    ),
)


class Tenant(Strict):
    principal_id: Id
    upi_vpas: UpiVpas


class VoucherRestrictionPush(Strict):
    """The full list of tenant UPI VPAs where the program's vouchers may be spent (replaces the bank's)."""

    program_id: Id
    tenants: Annotated[list[Tenant], Field(min_length=1, max_length=5_000)]


def _restrictions(ctx: ActionContext) -> dict:
    a: VoucherRestrictionPush = ctx.attributes
    vpas = sorted({v for t in a.tenants for v in t.upi_vpas})
    tenants = [{"principal_id": t.principal_id, "vpas": len(t.upi_vpas)} for t in a.tenants]
    return {"upi_vpas": vpas, "tenants": tenants}


VOUCHER_RESTRICTION_PUSH = JobType(
    name="voucher_restriction_push",
    model=VoucherRestrictionPush,
    example={
        "program_id": "GC-ORION-FESTIVE",
        "tenants": [{"principal_id": "P-CAFE-01", "upi_vpas": ["beanthere.g12@okhdfc", "beanthere@ybl"]}],
    },
    description="Send the bank the tenant UPI VPA list a program's vouchers are restricted to.",
    actions=(
        HttpAction("push_restrictions", "bank", "PUT", "/voucher-restrictions/{program_id}", _restrictions),
    ),
)
