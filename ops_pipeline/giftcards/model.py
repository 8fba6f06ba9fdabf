"""What each gift-card record holds, as pydantic models that validate input (snake_case keys).

The fields follow the job types' (`jobqueue/jobtypes/onboarding.py`, `programs.py`), so that the onboarding
and program jobs can write these records from their attributes. Fields marked `Sensitive` there (UPI VPAs,
bank details, contact e-mails and phones, street lines) are encrypted at rest and masked in every view.
Amounts are decimal strings in major units; stored records keep them as such, vouchers in minor units.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, HttpUrl, StringConstraints, model_validator

from ops_pipeline.jobqueue.jobtypes.fields import (
    Amount,
    BankAccount,
    Contact,
    Currency,
    Entity,
    Id,
    Name,
    Percent,
    Strict,
    Text,
    UpiVpa,
)
from ops_pipeline.jobqueue.jobtypes.onboarding import WalletSetup
from ops_pipeline.jobqueue.jobtypes.programs import GiftCardProgramCreation

VOUCHER_STATUSES = ("issued", "distributed", "redeemed", "expired", "cancelled")
# Which status a voucher may move to from each; redeemed, expired and cancelled are final.
TRANSITIONS: dict[str, frozenset[str]] = {
    "issued": frozenset({"distributed", "redeemed", "expired", "cancelled"}),
    "distributed": frozenset({"redeemed", "expired", "cancelled"}),
    "redeemed": frozenset(),
    "expired": frozenset(),
    "cancelled": frozenset(),
}
RESTRICTION_STATES = ("pending", "pushed", "failed")
FilePath = Annotated[str, StringConstraints(pattern=r"^giftcards/files/[A-Za-z0-9_./-]{1,400}$",
                                            max_length=420)]


class Material(Strict):
    """A marketing material, artwork or document: a URL, or a file stored under OPS_HOME (`giftcards/files`,
    see `files.store`)."""

    title: Name
    url: HttpUrl | None = None
    file: FilePath | None = None

    @model_validator(mode="after")
    def _one_place(self) -> Material:
        if (self.url is None) == (self.file is None):
            raise ValueError("give exactly one of url or file")
        if self.file is not None and ".." in self.file.split("/"):
            raise ValueError(f"file {self.file!r} leaves the files folder")
        return self


Materials = Annotated[list[Material], Field(max_length=50)]


class PrincipalTerms(Strict):
    """What the principal is charged and gives: commission on redemptions, discount, settlement."""

    commission_percent: Percent = Decimal(0)
    discount_percent: Percent = Decimal(0)
    settlement_currency: Currency = "INR"
    settlement_days: Annotated[int, Field(ge=0, le=365)] = 1
    pricing_notes: Text | None = None


class Principal(Strict):
    """A brand, a mall owner, or a mall's tenant (`mall_id` names the mall's principal)."""

    principal_id: Id
    kind: Literal["brand", "mall", "tenant"] = "brand"
    name: Name
    entity: Entity | None = None
    contact: Contact | None = None
    mall_id: Id | None = None
    unit: Name | None = Field(None, description="Shop or unit number in the mall")
    category: Name | None = None
    upi_vpas: Annotated[list[UpiVpa], Field(max_length=200)] = Field(default_factory=list)
    bank_account: BankAccount | None = None
    terms: PrincipalTerms = PrincipalTerms()
    marketing: Materials = Field(default_factory=list)

    @model_validator(mode="after")
    def _tenant_in_mall(self) -> Principal:
        if (self.kind == "tenant") != (self.mall_id is not None):
            raise ValueError("mall_id is given for a tenant, and only for a tenant")
        if len(set(self.upi_vpas)) != len(self.upi_vpas):
            raise ValueError("upi_vpas lists a VPA twice")
        return self


class Tier(Strict):
    """One step of a tiered rule: from `from_volume` of the month's volume (a count of vouchers, or a face
    value in major units, as the rule's `tier_basis` says) a sale earns `percent` of its face value or
    `flat_amount`."""

    from_volume: Annotated[Decimal, Field(ge=0, max_digits=19, decimal_places=4)]
    percent: Percent | None = None
    flat_amount: Amount | None = None

    @model_validator(mode="after")
    def _one_value(self) -> Tier:
        if (self.percent is None) == (self.flat_amount is None):
            raise ValueError("a tier has percent or flat_amount, and not both")
        return self


class CommissionRule(Strict):
    """A commission per voucher sold, between dates: a percent of the face value, a flat amount, or tiered by
    the month's volume (`tier_mode` whole_month: the tier reached applies to every sale of the month;
    marginal: each sale earns the tier its place in the month falls in); optional caps per voucher and per
    month (in the program's currency). See `giftcards.commissions` for the arithmetic and the rounding."""

    kind: Literal["percent", "flat", "tiered"]
    percent: Percent | None = None
    flat_amount: Amount | None = None
    tiers: Annotated[list[Tier], Field(max_length=20)] = Field(default_factory=list)
    tier_basis: Literal["count", "face_value"] = "count"
    tier_mode: Literal["whole_month", "marginal"] = "marginal"
    cap_per_voucher: Amount | None = None
    cap_per_month: Amount | None = None
    starts_on: date | None = None
    ends_on: date | None = None

    @model_validator(mode="after")
    def _value(self) -> CommissionRule:
        if (self.kind == "percent") != (self.percent is not None) or \
                (self.kind == "flat") != (self.flat_amount is not None):
            raise ValueError("a percent rule has percent, a flat rule flat_amount, and not the other")
        if (self.kind == "tiered") != bool(self.tiers):
            raise ValueError("a tiered rule has tiers, and only a tiered rule")
        starts = [t.from_volume for t in self.tiers]
        if starts and (starts[0] != 0 or starts != sorted(set(starts))):
            raise ValueError("tiers start at from_volume 0 and increase strictly")
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValueError(f"ends_on {self.ends_on} is before starts_on {self.starts_on}")
        return self

    def in_force(self, on: date) -> bool:
        return (self.starts_on is None or self.starts_on <= on) and \
            (self.ends_on is None or on <= self.ends_on)


CommissionRules = Annotated[list[CommissionRule], Field(max_length=20)]


class Program(GiftCardProgramCreation):
    """A gift-card program: the creation job's attributes plus its commissions, artworks and messages."""

    commission_rules: CommissionRules = Field(default_factory=list)
    artworks: Materials = Field(default_factory=list)
    email_message: Text | None = None
    terms_and_conditions: Text | None = None
    communications: Materials = Field(default_factory=list)


class Party(Strict):
    """A distributor or a B2B customer; its wallet is the ledger account `wallet_account_id` (default: its
    own id), whose balance is the ledger's."""

    party_id: Id
    kind: Literal["distributor", "customer"] = "distributor"
    name: Name
    entity: Entity | None = None
    contact: Contact | None = None
    wallet: WalletSetup = WalletSetup()
    wallet_account_id: Id | None = None
    bank_account: BankAccount | None = None


class Assignment(Strict):
    """A program a party may sell, on agreed terms, from `starts_on` (until unassigned). Its commission terms
    are the distributor's: `commission_rules`, else `commission_percent` when above 0, else the program's
    rules (`giftcards.commissions`); `discount_percent` is what the distributor pays less than face value."""

    party_id: Id
    program_id: Id
    commission_percent: Percent = Decimal(0)
    commission_rules: CommissionRules = Field(default_factory=list)
    discount_percent: Percent = Decimal(0)
    agreement_reference: Name | None = None
    agreement_terms: Text | None = None
    starts_on: date
    ends_on: date | None = None

    @model_validator(mode="after")
    def _dates(self) -> Assignment:
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise ValueError(f"ends_on {self.ends_on} is before starts_on {self.starts_on}")
        return self
