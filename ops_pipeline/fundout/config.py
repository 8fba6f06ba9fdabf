"""Fund-out configurations: one per business, validated field by field, every change audited.

Fields (API names): `freqType` H | D | W | M; `hour` 0-23 (default 22); `day` 0-6 with 0 = Sunday for W
(default 6), 1-31 for M (default 1; past the end of a short month means its last day), empty for H and
D; `minimumBalance` >= 0 with at most 3 decimals (default 0); `enabled` (default false); `timezone` (IANA,
default `OPS_TIMEZONE`); `notifyEmail` (optional: where payout notices go). `hour` and `day` take an
integer or a two-digit string. A PUT changes the fields it gives and keeps the others.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
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
FIELDS = ("freqType", "day", "hour", "minimumBalance", "enabled", "timezone", "notifyEmail")
READ_ONLY = ("id", "businessId", "createdAt", "updatedAt")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True)
class FundoutConfig:
    business_id: str
    freq_type: str
    day: int | None
    hour: int
    minimum_balance_milli: int  # thousandths of a major unit: exact, any currency
    timezone: str
    enabled: bool
    notify_email: str | None = None
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def minimum_balance(self) -> Decimal:
        return Decimal(self.minimum_balance_milli).scaleb(-3)

    def minimum_minor(self, exponent: int) -> int:
        """The minimum in a currency's minor units, rounded up: a payout never goes below it."""
        return -((-self.minimum_balance_milli * 10**exponent) // 1000)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "businessId": self.business_id,
            "freqType": self.freq_type,
            "day": self.day,
            "hour": self.hour,
            "minimumBalance": format(self.minimum_balance.normalize(), "f"),
            "enabled": self.enabled,
            "timezone": self.timezone,
            "notifyEmail": self.notify_email,
            "createdAt": self.created_at.isoformat() if self.created_at else None,
            "updatedAt": self.updated_at.isoformat() if self.updated_at else None,
        }

    def stored(self) -> dict[str, Any]:
        """The columns a create or update writes."""
        out = asdict(self)
        for key in ("id", "created_at", "updated_at"):
            out.pop(key)
        return out


def _int(body: dict, name: str, low: int, high: int) -> int:
    value = body[name]
    if isinstance(value, str) and re.fullmatch(r"\d{2}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"{name}: {body[name]!r} is not allowed; use an integer {low}-{high} or a two-digit string"
        )
    return value


def _minimum(value: Any) -> int:
    """Thousandths of a major unit; JSON numbers arrive as Decimal (the API parses them exactly)."""
    allowed = "use a number >= 0 with at most 3 decimals"
    try:
        if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
            raise InvalidOperation
        amount = Decimal(value)
        exact = amount.is_finite() and 0 <= amount < Decimal("1e15")
        exact = exact and amount == amount.quantize(Decimal("0.001"))
    except InvalidOperation:
        exact = False
    if not exact:
        raise InvalidInput(f"minimumBalance: {value!r} is not allowed; {allowed}")
    return int(amount.scaleb(3))


def parse(
    business_id: str, body: dict[str, Any], current: FundoutConfig | None, default_tz: str
) -> FundoutConfig:
    """A config from an API/CLI body (merged over `current` for updates); InvalidInput names the field."""
    if not isinstance(body, dict):
        raise InvalidInput("body: must be a JSON object")
    unknown = sorted(set(body) - set(FIELDS) - set(READ_ONLY))
    if unknown:
        raise InvalidInput(f"{unknown[0]}: is not a field; allowed: {', '.join(FIELDS)}")
    if body.get("businessId") not in (None, business_id):
        raise InvalidInput(f"businessId: {body['businessId']!r} differs from the path's {business_id!r}")
    if not business_id or len(business_id) > 64:
        raise InvalidInput(f"businessId: {business_id!r} must be 1-64 characters")
    values = {} if current is None else current.to_api()
    values.update({k: v for k, v in body.items() if k in FIELDS})
    freq = values.get("freqType")
    if freq not in FREQ_TYPES:
        raise InvalidInput(f"freqType: {freq!r} is not allowed; use one of {', '.join(FREQ_TYPES)}")
    if current is not None and freq != current.freq_type and "day" not in body:
        values["day"] = None  # the old type's day means nothing to the new one
    values.setdefault("hour", 22)
    day = None
    if freq in DAY_RANGES:
        low, high, default = DAY_RANGES[freq]
        day = default if values.get("day") is None else _int(values, "day", low, high)
    enabled = values.get("enabled", False)
    if not isinstance(enabled, bool):
        raise InvalidInput(f"enabled: {enabled!r} is not allowed; use true or false")
    timezone = values.get("timezone") or default_tz
    try:
        ZoneInfo(timezone)
    except Exception:
        raise InvalidInput(f"timezone: {timezone!r} is not an IANA time zone name (Europe/Paris)") from None
    email = values.get("notifyEmail")
    if email is not None and (not isinstance(email, str) or not EMAIL.match(email)):
        raise InvalidInput(f"notifyEmail: {email!r} is not an email address")
    return FundoutConfig(
        business_id=business_id,
        freq_type=freq,
        day=day,
        hour=_int(values, "hour", 0, 23),
        minimum_balance_milli=_minimum(values.get("minimumBalance", 0)),
        timezone=timezone,
        enabled=enabled,
        notify_email=email,
    )


def _row(row) -> FundoutConfig:
    m = row._mapping
    return FundoutConfig(**{k: m[k] for k in FundoutConfig.__dataclass_fields__})


def _find(conn: Connection, business_id: str) -> FundoutConfig | None:
    row = conn.execute(select(fundout_configs).where(fundout_configs.c.business_id == business_id)).first()
    return None if row is None else _row(row)


def get_config(ws: Workspace, business_id: str) -> FundoutConfig:
    with ws.read_engine.connect() as conn:
        found = _find(conn, business_id)
    if found is None:
        raise NotFound(f"businessId: {business_id!r} has no fund-out configuration")
    return found


def _audited(
    conn: Connection, business_id: str, actor: str, action: str, before: FundoutConfig | None = None
) -> FundoutConfig:
    """The configuration as stored, with the audit record of the change that stored it."""
    saved = _find(conn, business_id)
    audit.record(conn, actor=actor, entity_type="fundout_config", entity_id=business_id, action=action,
                 before=before.to_api() if before else None, after=saved.to_api())
    return saved


def create_config(ws: Workspace, business_id: str, body: dict[str, Any], actor: str) -> FundoutConfig:
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


def update_config(ws: Workspace, business_id: str, body: dict[str, Any], actor: str) -> FundoutConfig:
    with ws.engine.begin() as conn:
        current = _find(conn, business_id)
        if current is None:
            raise NotFound(f"businessId: {business_id!r} has no fund-out configuration; use POST")
        config = parse(business_id, body, current, ws.settings.timezone)
        conn.execute(
            update(fundout_configs)
            .where(fundout_configs.c.business_id == business_id)
            .values(**config.stored(), updated_at=datetime.now(UTC), updated_by=actor)
        )
        return _audited(conn, business_id, actor, "update", before=current)


def put_config(ws: Workspace, business_id: str, body: dict[str, Any], actor: str) -> FundoutConfig:
    """Change the configuration, or create it when there is none (the CLI and the demo)."""
    try:
        return update_config(ws, business_id, body, actor)
    except NotFound:
        return create_config(ws, business_id, body, actor)


def enabled_configs(conn: Connection) -> list[FundoutConfig]:
    rows = conn.execute(select(fundout_configs).where(fundout_configs.c.enabled.is_(True)))
    return [_row(r) for r in rows]
