"""Attribute building blocks shared by the job types: identifiers, UPI VPAs, bank details, money, entities.

Amounts are decimal strings in major units (e.g. "1500.00"), never floats, checked against the
currency's decimals and bounded to what int64 minor units hold. Every string has a maximum length.
Unknown attributes are refused, so a typo is an error rather than ignored data. Contact e-mails, phones
and the street lines and postal code of addresses are encrypted at rest, like UPI VPAs and bank details.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic_core.core_schema import ValidationInfo

from ops_pipeline.crypto import mask_head, mask_tail, mask_vpa
from ops_pipeline.errors import InvalidInput
from ops_pipeline.jobqueue.jobtypes.base import Sensitive
from ops_pipeline.money import exponent, to_minor

_VPA = re.compile(r"[a-z0-9][a-z0-9._-]{1,255}@[a-z][a-z0-9]{1,63}")
_IFSC = re.compile(r"[A-Z]{4}0[A-Z0-9]{6}")
GSTIN = r"^[0-9]{2}[A-Z]{5}[0-9]{4}[A-Z][1-9A-Z]Z[0-9A-Z]$"
MAX_MINOR = 2**63 - 1  # amounts are kept as int64 minor units


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _vpa(value: str) -> str:
    if not _VPA.fullmatch(value.lower()):
        raise ValueError(f"{value!r} is not a valid UPI VPA (handle@provider)")
    return value.lower()


def _account_number(value: str) -> str:
    if not (value.isdigit() and 9 <= len(value) <= 18):
        raise ValueError("must be 9 to 18 digits")
    return value


def _ifsc(value: str) -> str:
    if not _IFSC.fullmatch(value.upper()):
        raise ValueError(f"{value!r} is not an IFSC code (4 letters, 0, 6 letters or digits)")
    return value.upper()


def _currency(value: str) -> str:
    try:
        exponent(value)
    except InvalidInput:
        raise ValueError(f"{value!r} is not an ISO 4217 currency") from None
    return value


def _unique(values: list) -> list:
    seen = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{v!r} is listed twice")
        seen.add(v)
    return values


def check_decimals(value: Decimal, currency: str | None) -> Decimal:
    """`value` has no more decimals than `currency` allows and fits int64 minor units of it (skipped when the
    currency is itself invalid)."""
    if currency is None:
        return value
    allowed = exponent(currency)
    decimals = max(0, -value.normalize().as_tuple().exponent)
    if decimals > allowed:
        raise ValueError(f"'{value}' has {decimals} decimals, {currency} allows {allowed}")
    if to_minor(value, currency) > MAX_MINOR:
        raise ValueError(f"'{value}' is too large: {currency} amounts are at most {MAX_MINOR} minor units")
    return value


def _mask_all(value: str) -> str:
    return "***"


def _mask_postal_code(value: str) -> str:
    return mask_head(value, 3)


Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", max_length=64)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=10_000)]
UpiVpa = Annotated[
    str, StringConstraints(max_length=320), AfterValidator(_vpa), Sensitive("upi_vpa", mask_vpa)
]
UpiVpas = Annotated[list[UpiVpa], Field(min_length=1, max_length=200), AfterValidator(_unique)]
AccountNumber = Annotated[
    str,
    StringConstraints(max_length=18),
    AfterValidator(_account_number),
    Sensitive("bank_account_number", mask_tail),
]
Ifsc = Annotated[
    str,
    StringConstraints(min_length=11, max_length=11),
    AfterValidator(_ifsc),
    Sensitive("bank_ifsc", mask_head),
]
Currency = Annotated[
    str,
    StringConstraints(min_length=3, max_length=3),
    AfterValidator(_currency),
    Field(description="ISO 4217 code, e.g. INR"),
]


def _amount_schema(low: dict) -> WithJsonSchema:
    """Amounts are validated exactly (19 digits, then the currency's decimals and int64 minor units); the
    schema states a bound that fits every currency (14 integer digits, 4 decimals)."""
    return WithJsonSchema({
        "anyOf": [
            {"type": "number", **low, "maximum": 99_999_999_999_999},
            {"type": "string", "pattern": r"^[0-9]{1,14}(\.[0-9]{1,4})?$", "maxLength": 19},
        ],
        "description": "Major units as a decimal string, e.g. '1500.00', with no more decimals than the "
        "currency allows and at most 2^63-1 minor units",
    })


Amount = Annotated[
    Decimal, Field(gt=0, max_digits=19, decimal_places=4), _amount_schema({"exclusiveMinimum": 0})
]
NonNegativeAmount = Annotated[
    Decimal, Field(ge=0, max_digits=19, decimal_places=4), _amount_schema({"minimum": 0})
]


def _percent_schema(low: dict) -> WithJsonSchema:
    return WithJsonSchema({
        "anyOf": [
            {"type": "number", **low, "maximum": 100},
            {"type": "string", "pattern": r"^[0-9]{1,3}(\.[0-9]{1,4})?$", "maxLength": 8},
        ],
        "description": "A percentage, 0 to 100, with at most 4 decimals",
    })


Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=4), _percent_schema({"minimum": 0})]
PositivePercent = Annotated[
    Decimal, Field(gt=0, le=100, decimal_places=4), _percent_schema({"exclusiveMinimum": 0})
]
Email = Annotated[
    str,
    StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254),
    Sensitive("email", mask_vpa),
]
Phone = Annotated[
    str, StringConstraints(pattern=r"^\+?[0-9]{8,15}$", max_length=16), Sensitive("phone", mask_tail)
]
AddressLine = Annotated[str, StringConstraints(min_length=1, max_length=200), Sensitive("address", _mask_all)]
PostalCode = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9A-Za-z -]{3,10}$", max_length=10),
    Sensitive("postal_code", _mask_postal_code),
]


class Funds(Strict):
    """An amount in a currency; fields in this order so the amount is checked against the currency."""

    currency: Currency = "INR"
    amount: Amount

    @field_validator("amount")
    @classmethod
    def _decimals(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        return check_decimals(value, info.data.get("currency"))


class Address(Strict):
    """A postal address; the street lines and the postal code are encrypted at rest."""

    line1: AddressLine
    line2: AddressLine | None = None
    city: Name
    state: Name
    postal_code: PostalCode
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$", max_length=2)] = "IN"


class Entity(Strict):
    """Who the business is, legally."""

    legal_name: Name
    trade_name: Name | None = None
    entity_type: Literal["company", "llp", "partnership", "proprietorship", "trust", "society"]
    pan: Annotated[str, StringConstraints(pattern=r"^[A-Z]{5}[0-9]{4}[A-Z]$", max_length=10)] | None = None
    gstin: Annotated[str, StringConstraints(pattern=GSTIN, max_length=15)] | None = None
    address: Address


class Contact(Strict):
    """A person to reach; the e-mail and the phone are encrypted at rest."""

    name: Name
    email: Email
    phone: Phone


class BankAccount(Strict):
    """A bank account in India; the number and the IFSC are encrypted at rest."""

    account_holder: Name
    account_number: AccountNumber
    ifsc: Ifsc


class MarketingMaterial(Strict):
    headline: Annotated[str, StringConstraints(max_length=120)] | None = None
    description: Text | None = None
    terms_url: HttpUrl | None = None
    image_urls: Annotated[list[HttpUrl], Field(max_length=20)] = Field(default_factory=list)


class Discount(Strict):
    """A discount on the face value while the dates hold (inclusive), for orders from `min_order_value`."""

    name: Name
    percent: PositivePercent
    min_order_value: NonNegativeAmount = Decimal(0)
    starts_on: date | None = None
    ends_on: date | None = None

    @field_validator("ends_on")
    @classmethod
    def _after_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("starts_on")
        if value is not None and start is not None and value < start:
            raise ValueError(f"{value} is before starts_on {start}")
        return value
