"""Exact money: ISO 4217 minor units, decimal text to integer minor units and back. Never float."""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache

import iso4217

from ops_pipeline.errors import InvalidInput

_DECIMAL = re.compile(r"^\s*(\d+)(?:\.(\d*))?\s*$")


@cache
def currency_exponents() -> dict[str, int]:
    """Every ISO 4217 currency that has minor units, with its number of decimals (JPY 0, EUR 2, BHD 3)."""
    return {c.code: c.exponent for c in iso4217.Currency if c.exponent is not None}


def exponent(currency: str) -> int:
    try:
        return currency_exponents()[currency]
    except KeyError:
        raise InvalidInput(f"currency: {currency!r} is not an ISO 4217 currency") from None


def to_minor(
    value: str | int | Decimal, currency: str, field: str = "amount", allow_zero: bool = True
) -> int:
    """Parse a non-negative major-unit amount into minor units, refusing more decimals than allowed."""
    exp = exponent(currency)
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    match = _DECIMAL.match(text)
    if not match:
        raise InvalidInput(f"{field}: {text!r} is not a non-negative decimal number")
    whole, frac = match.group(1), (match.group(2) or "").rstrip("0")
    if len(frac) > exp:
        raise InvalidInput(f"{field}: {text!r} has {len(frac)} decimals, {currency} allows {exp}")
    minor = int(whole) * 10**exp + int(frac.ljust(exp, "0") or 0)
    if minor == 0 and not allow_zero:
        raise InvalidInput(f"{field}: {text!r} must be positive")
    return minor


def to_major(minor: int, currency: str) -> Decimal:
    """Integer minor units to an exact Decimal in major units, quantized to the currency's decimals."""
    exp = exponent(currency)
    return Decimal(minor).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))


def fee_minor(amount_minor: int, fee_percent_micros: int, fee_fixed_minor: int) -> int:
    """round_half_up(amount x percent / 100) + fixed, with the percent in millionths of a percent."""
    return (amount_minor * fee_percent_micros + 50_000_000) // 100_000_000 + fee_fixed_minor
