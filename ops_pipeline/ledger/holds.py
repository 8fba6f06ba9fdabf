"""Holds reserve part of `available` (fund-out, disbursements, manual) with an id and an optional expiry."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, select, update

from ops_pipeline import audit
from ops_pipeline.db.bulk import insert_rows
from ops_pipeline.db.schema import balance_cache, ledger_holds
from ops_pipeline.errors import Conflict, InsufficientFunds, InvalidInput, NotFound
from ops_pipeline.ledger.balances import get_balances, held_by_currency
from ops_pipeline.money import to_major
from ops_pipeline.workspace import Workspace

ACTIVE, RELEASED, EXPIRED, CAPTURED = "active", "released", "expired", "captured"


@dataclass(frozen=True)
class Hold:
    hold_id: str
    merchant_id: str
    currency: str
    amount_minor: int
    status: str
    created_at: datetime
    expires_at: datetime | None
    reason: str | None = None
    reference: str | None = None

    def to_dict(self) -> dict:
        return {
            "hold_id": self.hold_id,
            "merchant_id": self.merchant_id,
            "currency": self.currency,
            "amount": str(to_major(self.amount_minor, self.currency)),
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "reason": self.reason,
            "reference": self.reference,
        }


def _hold(row) -> Hold:
    m = row._mapping
    return Hold(**{k: m[k] for k in Hold.__dataclass_fields__})


def get_hold(ws: Workspace, hold_id: str) -> Hold:
    with ws.engine.connect() as conn:
        row = conn.execute(select(ledger_holds).where(ledger_holds.c.hold_id == hold_id)).first()
    if row is None:
        raise NotFound(f"hold_id: {hold_id!r} does not exist")
    return _hold(row)


def merchant_holds(ws: Workspace, merchant_id: str, limit: int = 20) -> list[Hold]:
    """A merchant's holds: the active ones, then the latest ended; newest first in each, at most `limit`."""
    h = ledger_holds.c
    with ws.read_engine.connect() as conn:
        rows = conn.execute(select(ledger_holds).where(h.merchant_id == merchant_id)
                            .order_by(h.status != ACTIVE, h.created_at.desc(), h.hold_id).limit(limit))
        return [_hold(r) for r in rows]


def place_hold(
    ws: Workspace,
    merchant_id: str,
    currency: str,
    amount_minor: int,
    *,
    actor: str,
    hold_id: str | None = None,
    expires_at: datetime | None = None,
    reason: str | None = None,
    reference: str | None = None,
    on_placed: Callable[[Connection], None] | None = None,
) -> Hold:
    """Reserve `amount_minor` of the available balance; the same `hold_id` again is a no-op.

    `on_placed` runs in the hold's transaction, for a caller's own row that must exist with the hold."""
    if amount_minor <= 0:
        raise InvalidInput("amount: must be positive")
    now = datetime.now(UTC)
    if expires_at is not None and expires_at <= now:
        raise InvalidInput(f"expires_at: {expires_at.isoformat()} is not in the future")
    hold_id = hold_id or str(uuid.uuid4())
    with ws.engine.begin() as conn:
        # Serialize holds per balance: row lock on PostgreSQL, BEGIN IMMEDIATE on SQLite.
        conn.execute(
            select(balance_cache.c.merchant_id)
            .where(balance_cache.c.merchant_id == merchant_id, balance_cache.c.currency == currency)
            .with_for_update()
        )
        existing = conn.execute(select(ledger_holds).where(ledger_holds.c.hold_id == hold_id)).first()
        if existing is not None:
            same = (existing.merchant_id, existing.currency, existing.amount_minor) == (
                merchant_id,
                currency,
                amount_minor,
            )
            if not same:
                raise Conflict(f"hold_id: {hold_id!r} already exists with other values")
            return _hold(existing)
        # Held first, settled after: a payout posts its entry before it captures its hold, so this order
        # can only understate what is available, never count a paid-out amount twice.
        held = held_by_currency(conn, merchant_id, now).get(currency, 0)
        try:
            settled = get_balances(ws, merchant_id, currency)[0].settled_minor
        except NotFound:
            settled = 0
        available = settled - held
        if amount_minor > available:
            raise InsufficientFunds(
                f"amount: {to_major(amount_minor, currency)} {currency} exceeds the available "
                f"{to_major(available, currency)} {currency} of merchant {merchant_id!r}"
            )
        values = dict(
            hold_id=hold_id,
            merchant_id=merchant_id,
            currency=currency,
            amount_minor=amount_minor,
            status=ACTIVE,
            reason=reason,
            reference=reference,
            created_by=actor,
            created_at=now,
            expires_at=expires_at,
        )
        conn.execute(ledger_holds.insert().values(**values))
        audit.record(
            conn,
            actor=actor,
            entity_type="hold",
            entity_id=hold_id,
            action="place",
            after=values,
            reason=reason,
        )
        if on_placed is not None:
            on_placed(conn)
        return Hold(**{k: values[k] for k in Hold.__dataclass_fields__})


def end_hold(
    ws: Workspace, hold_id: str, *, actor: str, status: str = RELEASED, reason: str | None = None
) -> Hold:
    """Release (or mark captured) an active hold; ending an already ended hold is refused."""
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        row = conn.execute(select(ledger_holds).where(ledger_holds.c.hold_id == hold_id)).first()
        if row is None:
            raise NotFound(f"hold_id: {hold_id!r} does not exist")
        if row.status != ACTIVE:
            raise Conflict(f"hold_id: {hold_id!r} is already {row.status}")
        conn.execute(
            update(ledger_holds)
            .where(ledger_holds.c.hold_id == hold_id)
            .values(status=status, ended_at=now, ended_by=actor, end_reason=reason)
        )
        audit.record(
            conn,
            actor=actor,
            entity_type="hold",
            entity_id=hold_id,
            action=status,
            before={"status": row.status},
            after={"status": status},
            reason=reason,
        )
    return get_hold(ws, hold_id)


def expire_holds(ws: Workspace, now: datetime | None = None, actor: str = "system:hold-expiry") -> int:
    """Mark holds past their expiry as expired (reads already ignore them); returns how many."""
    now = now or datetime.now(UTC)
    h = ledger_holds.c
    with ws.engine.begin() as conn:
        due = conn.execute(select(h.hold_id).where(h.status == ACTIVE, h.expires_at <= now)).scalars().all()
        for hold_id in due:
            conn.execute(
                update(ledger_holds)
                .where(h.hold_id == hold_id, h.status == ACTIVE)
                .values(status=EXPIRED, ended_at=now, ended_by=actor, end_reason="expired")
            )
            audit.record(
                conn,
                actor=actor,
                entity_type="hold",
                entity_id=hold_id,
                action=EXPIRED,
                before={"status": ACTIVE},
                after={"status": EXPIRED},
            )
    return len(due)


def reserve_many(conn: Connection, holds: list[dict], *, actor: str, reason: str, now: datetime) -> None:
    """Insert many holds (hold_id, merchant_id, currency, amount_minor, reference) with an audit record each.

    The caller has checked the available balances, under the locks that keep them true (see fund-out)."""
    rows = [dict(h, status=ACTIVE, reason=reason, created_by=actor, created_at=now) for h in holds]
    insert_rows(conn, ledger_holds, rows)
    placed = [dict(entity_id=r["hold_id"], action="place", after=r, reason=reason) for r in rows]
    audit.record_many(conn, placed, actor=actor, entity_type="hold", at=now)


def end_many(
    conn: Connection, hold_ids: list[str], *, status: str, actor: str, reason: str, now: datetime
) -> int:
    """End many active holds (released or captured) with an audit record each; returns how many ended."""
    h = ledger_holds.c
    ended = 0
    for start in range(0, len(hold_ids), 5000):
        chunk = hold_ids[start : start + 5000]
        active = conn.execute(
            update(ledger_holds).where(h.hold_id.in_(chunk), h.status == ACTIVE)
            .values(status=status, ended_at=now, ended_by=actor, end_reason=reason).returning(h.hold_id)
        ).scalars().all()
        change = dict(action=status, before={"status": ACTIVE}, after={"status": status}, reason=reason)
        ended_ones = [dict(change, entity_id=i) for i in active]
        audit.record_many(conn, ended_ones, actor=actor, entity_type="hold", at=now)
        ended += len(active)
    return ended
