"""Checks of the values a request carries, each failing with the OpenG2P code for its field."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from ops_pipeline.disbursements.codes import G2PError
from ops_pipeline.errors import InvalidInput
from ops_pipeline.money import to_minor

MAX_COUNT = 10**9
MAX_MINOR = 2**63 - 1
_SHOWN = 60


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def text(value: Any, field: str, code: str, max_len: int) -> str:
    """A non-blank string of at most `max_len` characters, stripped."""
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > max_len:
        raise G2PError(
            code, f"{field}: {shown(value)} is not a non-empty text of at most {max_len} characters"
        )
    return value.strip()


def count(value: Any, field: str, code: str) -> int:
    """A whole number from 1 to MAX_COUNT."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise G2PError(code, f"{field}: {shown(value)} is not a whole number from 1 to {MAX_COUNT}")
    return value


def amount(value: Any, currency: str, field: str, code: str, allow_zero: bool) -> int:
    """Exact minor units of a decimal number or text, with at most the currency's decimals."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise G2PError(code, f"{field}: {shown(value)} is not a decimal number")
    try:
        minor = to_minor(value, currency, field, allow_zero=allow_zero)
    except InvalidInput as exc:
        raise G2PError(code, str(exc)) from None
    if minor > MAX_MINOR:
        raise G2PError(code, f"{field}: {shown(value)} is too large")
    return minor


def day(value: Any, field: str, code: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise G2PError(code, f"{field}: {shown(value)} is not a date (YYYY-MM-DD)") from None


def uuid_text(value: Any, field: str, code: str) -> str:
    """A UUID in its canonical lower-case form."""
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        raise G2PError(code, f"{field}: {shown(value)} is not a UUID") from None
