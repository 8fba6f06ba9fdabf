"""Values of the ticketing model, their validation, and the clock (tests move it across midnight)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ops_pipeline.errors import InvalidInput

OPEN, RESOLVED = "open", "resolved"
STATUSES = (OPEN, RESOLVED)
SOURCES = ("manual", "job", "manual_job", "run_failure", "reconciliation", "principal_payment")
PRIORITY_MIN, PRIORITY_MAX, PRIORITY_DEFAULT = 1, 5, 3  # 1 is the most urgent
MAX_BATCH = 10_000
MAX_PAGE = 500


def now() -> datetime:
    return datetime.now(UTC)


def text(field: str, value: Any, max_length: int, required: bool = True) -> str | None:
    """A trimmed string of at most `max_length` characters; InvalidInput naming `field` otherwise."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field}: is required")
    if len(value) > max_length:
        raise InvalidInput(f"{field}: is longer than {max_length} characters")
    return value.strip()


def email(value: Any) -> str:
    address = text("email", value, 320)
    local, _, domain = address.partition("@")
    if not local or "." not in domain or " " in address:
        raise InvalidInput(f"email: {address!r} is not an email address")
    return address


def priority(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not PRIORITY_MIN <= value <= PRIORITY_MAX:
        raise InvalidInput(f"priority: {value!r} is not an integer from {PRIORITY_MIN} to {PRIORITY_MAX}")
    return value


def choice(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(f"{field}: {value!r} is not one of {', '.join(allowed)}")
    return value


def identifier(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{field}: {value!r} is not an id")
    return value


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
