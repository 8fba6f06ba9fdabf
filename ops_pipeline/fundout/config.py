"""Fund-out configurations: one per business, validated field by field, every change audited.

Fields (as the API and the CLI name them): `freqType` H | D | W | M; `hour` 0-23 local (default 22; may be
empty for H); `day` 0-6 with 0 = Sunday for W (default 6), 1-31 for M (default 1; past the end of a short
month means its last day), ignored (and may be empty) for H and D; `minimumBalance` >= 0 with at most 3
decimals, below 10^15 (default 0); `enabled` (default false); `timezone` (IANA, default `OPS_TIMEZONE`);
`notifyEmail` (optional, at most 254 characters: where payout notices go). `hour` and `day` take an integer
or a string of one or two ASCII digits ("6", "06"). A PUT changes the fields it gives and keeps the others.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update

from ops_pipeline import audit
from ops_pipeline.db.schema import fundout_configs
from ops_pipeline.errors import Conflict, InvalidInput, NotFound
from ops_pipeline.workspace import Workspace

FREQ_TYPES = ("H", "D", "W", "M")
DAY_RANGES = {"W": (0, 6, 6), "M": (1, 31, 1)}  # (lowest, highest, default)
DEFAULT_HOUR = 22
FIELDS = ("freqType", "day", "hour", "minimumBalance", "enabled", "timezone", "notifyEmail")
READ_ONLY = ("id", "businessId", "createdAt", "updatedAt")  # sent back by clients that PUT what they GET
# The bounds, shared with the API's schema so that clients see what the domain enforces.
MAX_BUSINESS_ID = 64
MAX_MINIMUM = Decimal("1e15")  # exclusive; thousandths of it still fit in 64 bits
MAX_EMAIL = 254  # RFC 5321's path limit
MAX_TIMEZONE = 64
SMALL_INT = r"[0-9]{1,2}"  # ASCII only: int() would also read Arabic-Indic and other digits
EMAIL = r"[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+"
TIMEZONE = r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*"
DECIMAL = r"[0-9]{1,15}(?:\.[0-9]{1,3})?"


@dataclass(frozen=True)
class FundoutConfig:
    business_id: str
    freq_type: str
    day: int | None
    hour: int
    minimum_balance: Decimal  # major units, at most 3 decimals: exact in any currency
    timezone: str
    enabled: bool
    notify_email: str | None = None
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def minimum_minor(self, exponent: int) -> int:
        """The minimum in a currency's minor units, rounded up: a payout never goes below it."""
        return -((-self.minimum_milli * 10**exponent) // 1000)

    @property
    def minimum_milli(self) -> int:
        return int(self.minimum_balance.scaleb(3))

    def stored(self) -> dict[str, Any]:
        """The columns a create or update writes."""
        return dict(
            business_id=self.business_id,
            freq_type=self.freq_type,
            day=self.day,
            hour=self.hour,
            minimum_balance_milli=self.minimum_milli,
            timezone=self.timezone,
            enabled=self.enabled,
            notify_email=self.notify_email,
        )

    def audited(self) -> dict[str, Any]:
        """The state an audit record keeps (exact text for the amount)."""
        return {**self.stored(), "minimum_balance": format(self.minimum_balance, "f")}

    def fields(self) -> dict[str, Any]:
        """The fields by their API names: what a partial update is merged over."""
        return {
            "freqType": self.freq_type,
            "day": self.day,
            "hour": self.hour,
            "minimumBalance": self.minimum_balance,
            "enabled": self.enabled,
            "timezone": self.timezone,
            "notifyEmail": self.notify_email,
        }


def shown(value: Any, limit: int = 40) -> str:
    """A value quoted for an error message, cut short: a 100k-character field is not echoed back whole."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...' ({len(str(value))} characters)"


def _int(name: str, value: Any, low: int, high: int) -> int:
    number = int(value) if isinstance(value, str) and re.fullmatch(SMALL_INT, value) else value
    if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
        raise InvalidInput(
            f"{name}: {shown(value)} is not allowed; use an integer {low}-{high} "
            "or its one- or two-digit string"
        )
    return number


def _minimum(value: Any) -> Decimal:
    """Exact: JSON numbers arrive as Decimal (the API parses them so), text must be plain ASCII digits."""
    allowed = "use a number >= 0 and below 10^15 with at most 3 decimals"
    amount = None
    if isinstance(value, str) and re.fullmatch(DECIMAL, value):
        amount = Decimal(value)
    elif isinstance(value, int | Decimal) and not isinstance(value, bool):
        try:
            amount = Decimal(value)
            if not (
                amount.is_finite()
                and 0 <= amount < MAX_MINIMUM
                and amount == amount.quantize(Decimal("0.001"))
            ):
                amount = None
        except InvalidOperation:
            amount = None
    if amount is None:
        raise InvalidInput(f"minimumBalance: {shown(value)} is not allowed; {allowed}")
    return amount.normalize() if amount else Decimal(0)


def _optional(values: dict[str, Any], name: str, given: bool) -> Any:
    """The field's value, or None when it is absent, null or "" (the contract's empty day and hour)."""
    value = values.get(name)
    return None if value == "" and given else value


def _text(name: str, value: Any, pattern: str, limit: int, example: str) -> str:
    if not isinstance(value, str) or len(value) > limit or not re.fullmatch(pattern, value, re.ASCII):
        raise InvalidInput(
            f"{name}: {shown(value)} is not allowed; use {example} (at most {limit} characters)"
        )
    return value


def parse(
    business_id: str, body: Mapping[str, Any], current: FundoutConfig | None, default_tz: str
) -> FundoutConfig:
    """A config from the named fields (merged over `current` for updates); InvalidInput names the field."""
    if not isinstance(body, Mapping):
        raise InvalidInput("body: must be a JSON object")
    unknown = sorted(set(body) - set(FIELDS) - set(READ_ONLY), key=str)
    if unknown:
        raise InvalidInput(f"{unknown[0][:40]}: is not a field; allowed: {', '.join(FIELDS)}")
    if not isinstance(business_id, str) or not 0 < len(business_id) <= MAX_BUSINESS_ID:
        raise InvalidInput(f"businessId: {shown(business_id)} must be 1-{MAX_BUSINESS_ID} characters")
    for name in READ_ONLY:
        if not isinstance(body.get(name), str | int | None) or len(str(body.get(name))) > MAX_BUSINESS_ID:
            raise InvalidInput(
                f"{name}: {shown(body[name])} is not allowed; it is read-only, send it as read"
            )
    if body.get("businessId") not in (None, business_id):
        raise InvalidInput(f"businessId: {shown(body['businessId'])} differs from the path's {business_id!r}")
    values = {} if current is None else current.fields()
    values.update({k: v for k, v in body.items() if k in FIELDS})
    freq = values.get("freqType")
    if freq not in FREQ_TYPES:
        raise InvalidInput(f"freqType: {shown(freq)} is not allowed; use one of {', '.join(FREQ_TYPES)}")
    if current is not None and freq != current.freq_type and "day" not in body:
        values["day"] = None  # the old type's day means nothing to the new one
    day = _optional(values, "day", given=freq not in DAY_RANGES)
    if freq in DAY_RANGES:
        low, high, default = DAY_RANGES[freq]
        day = default if day is None else _int("day", day, low, high)
    elif day is not None:
        _int("day", day, 0, 31)  # ignored for H and D, but never garbage
        day = None
    hour = _optional(values, "hour", given=freq == "H")
    enabled = values.get("enabled", False)
    if not isinstance(enabled, bool):
        raise InvalidInput(f"enabled: {shown(enabled)} is not allowed; use true or false")
    timezone = values.get("timezone") or default_tz
    _text("timezone", timezone, TIMEZONE, MAX_TIMEZONE, "an IANA time zone name (Europe/Paris)")
    try:
        ZoneInfo(timezone)
    except Exception:
        raise InvalidInput(
            f"timezone: {shown(timezone)} is not an IANA time zone name (Europe/Paris)"
        ) from None
    email = values.get("notifyEmail")
    if email is not None:
        _text("notifyEmail", email, EMAIL, MAX_EMAIL, "an email address (name@example.com)")
    return FundoutConfig(
        business_id=business_id,
        freq_type=freq,
        day=day,
        hour=DEFAULT_HOUR if hour is None else _int("hour", hour, 0, 23),
        minimum_balance=_minimum(values.get("minimumBalance", 0)),
        timezone=timezone,
        enabled=enabled,
        notify_email=email,
    )


def _row(row) -> FundoutConfig:
    m = row._mapping
    return FundoutConfig(
        **{k: m[k] for k in FundoutConfig.__dataclass_fields__ if k != "minimum_balance"},
        minimum_balance=Decimal(m["minimum_balance_milli"]).scaleb(-3).normalize(),
    )


def _find(conn: Connection, business_id: str) -> FundoutConfig | None:
    row = conn.execute(select(fundout_configs).where(fundout_configs.c.business_id == business_id)).first()
    return None if row is None else _row(row)


def get_config(ws: Workspace, business_id: str) -> FundoutConfig:
    with ws.read_engine.connect() as conn:
        found = _find(conn, business_id)
    if found is None:
        raise NotFound(f"businessId: {shown(business_id)} has no fund-out configuration")
    return found


def _audited(
    conn: Connection, business_id: str, actor: str, action: str, before: FundoutConfig | None = None
) -> FundoutConfig:
    """The configuration as stored, with the audit record of the change that stored it."""
    saved = _find(conn, business_id)
    audit.record(
        conn,
        actor=actor,
        entity_type="fundout_config",
        entity_id=business_id,
        action=action,
        before=before.audited() if before else None,
        after=saved.audited(),
    )
    return saved


def create_config(ws: Workspace, business_id: str, body: Mapping[str, Any], actor: str) -> FundoutConfig:
    config = parse(business_id, body, None, ws.settings.timezone)
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        if _find(conn, business_id) is not None:
            raise Conflict(f"businessId: {business_id!r} already has a fund-out configuration; use PUT")
        conn.execute(
            insert(fundout_configs).values(
                **config.stored(), created_at=now, created_by=actor, updated_at=now, updated_by=actor
            )
        )
        return _audited(conn, business_id, actor, "create")


def update_config(ws: Workspace, business_id: str, body: Mapping[str, Any], actor: str) -> FundoutConfig:
    with ws.engine.begin() as conn:
        current = _find(conn, business_id)
        if current is None:
            raise NotFound(f"businessId: {shown(business_id)} has no fund-out configuration; use POST")
        config = parse(business_id, body, current, ws.settings.timezone)
        conn.execute(
            update(fundout_configs)
            .where(fundout_configs.c.business_id == business_id)
            .values(**config.stored(), updated_at=datetime.now(UTC), updated_by=actor)
        )
        return _audited(conn, business_id, actor, "update", before=current)


def put_config(ws: Workspace, business_id: str, body: Mapping[str, Any], actor: str) -> FundoutConfig:
    """Change the configuration, or create it when there is none (the CLI and the demo)."""
    try:
        return update_config(ws, business_id, body, actor)
    except NotFound:
        return create_config(ws, business_id, body, actor)


def enabled_configs(conn: Connection) -> list[FundoutConfig]:
    rows = conn.execute(select(fundout_configs).where(fundout_configs.c.enabled.is_(True)))
    return [_row(r) for r in rows]
