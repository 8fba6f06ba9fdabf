"""Vouchers: issued in a program at a face value and a price paid, held by a distributor or customer, then
distributed, redeemed, expired or cancelled (`model.TRANSITIONS`; a move it does not allow is a Conflict).
Amounts are integer minor units of the program's currency. Every change is audited and becomes a voucher
event (`events`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select, update

from ops_pipeline import audit
from ops_pipeline.db.bulk import insert_rows
from ops_pipeline.db.schema import gc_vouchers
from ops_pipeline.errors import Conflict, InvalidInput, NotFound
from ops_pipeline.giftcards import events
from ops_pipeline.giftcards.kinds import PARTIES, PROGRAMS
from ops_pipeline.giftcards.model import TRANSITIONS, VOUCHER_STATUSES
from ops_pipeline.giftcards.records import check_version, jsonable, keyset_page, require
from ops_pipeline.money import to_major, to_minor
from ops_pipeline.workspace import Workspace

MAX_ISSUE = 10_000  # vouchers per call
ENTITY = "gc_voucher"
_STATE = ("status", "holder_id", "version")


def view(row: Any) -> dict[str, Any]:
    """A voucher (a row or its values) as the API and the CLI show it: amounts in major units as exact
    decimal text."""
    v = dict(row if isinstance(row, dict) else row._mapping)
    for name in ("face_value", "price_paid"):
        v[name] = str(to_major(v.pop(f"{name}_minor"), v["currency"]))
    return {k: jsonable(x) for k, x in v.items()}


def face_value_allowed(pricing: dict[str, Any], face: Decimal) -> bool:
    if pricing["denominations"]:
        return any(Decimal(d) == face for d in pricing["denominations"])
    return Decimal(pricing["min_value"]) <= face <= Decimal(pricing["max_value"])


def _holder(conn: Connection, holder_id: str | None) -> str | None:
    if holder_id is not None and require(conn, PARTIES, holder_id, "holder_id").status != "active":
        raise Conflict(f"holder_id: party {holder_id!r} is inactive")
    return holder_id


def issue(ws: Workspace, program_id: str, face_value: str | Decimal, count: int, price_paid: str | Decimal,
          actor: str, holder_id: str | None = None, *, distributed: bool = False,
          voucher_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Issue `count` vouchers of an active program at `face_value` (one of its denominations, or within its
    range) for `price_paid` each, optionally to a distributor or customer (`distributed`: handed to it
    now); they expire after the program's validity. Given `voucher_ids` (one per voucher) and the first
    exists already, nothing is issued again: the stored vouchers are returned."""
    if not isinstance(count, int) or not 1 <= count <= MAX_ISSUE:
        raise InvalidInput(f"count: {count!r} is not between 1 and {MAX_ISSUE}")
    if voucher_ids is not None and len(voucher_ids) != count:
        raise InvalidInput(f"voucher_ids: {len(voucher_ids)} ids for {count} vouchers")
    if distributed and holder_id is None:
        raise InvalidInput("holder_id: distributed vouchers need a holder")
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        if voucher_ids is not None:
            issued = conn.execute(select(gc_vouchers).where(gc_vouchers.c.voucher_id.in_(voucher_ids))).all()
            if issued:
                return [view(r) for r in issued]
        program = require(conn, PROGRAMS, program_id, "program_id")
        if program.status != "active":
            raise Conflict(f"program_id: program {program_id!r} is inactive")
        currency = program.currency
        face_minor = to_minor(face_value, currency, "face_value", allow_zero=False)
        if not face_value_allowed(program.details["pricing"], to_major(face_minor, currency)):
            raise InvalidInput(f"face_value: {face_value} is not a face value of program {program_id!r}")
        price_minor = to_minor(price_paid, currency, "price_paid")
        holder_id = _holder(conn, holder_id)
        expires_at = now + timedelta(days=program.details["validity_days"])
        rows = [
            {"voucher_id": voucher_id, "program_id": program_id,
             "currency": currency, "face_value_minor": face_minor, "price_paid_minor": price_minor,
             "holder_id": holder_id, "status": "distributed" if distributed else "issued",
             "expires_at": expires_at, "issued_at": now, "distributed_at": now if distributed else None,
             "redeemed_at": None, "expired_at": None, "cancelled_at": None, "version": 1, "updated_by": actor,
             "updated_at": now}
            for voucher_id in voucher_ids or (new_voucher_id() for _ in range(count))
        ]
        insert_rows(conn, gc_vouchers, rows)
        audit.record_many(conn, [{"entity_id": r["voucher_id"], "action": "issue",
                                  "after": {k: jsonable(r[k]) for k in ("program_id", "face_value_minor",
                                            "price_paid_minor", "holder_id", "status", "expires_at")}}
                                 for r in rows], actor=actor, entity_type=ENTITY, at=now)
        events.add(conn, rows, "issued", None, actor, now)
    events.publish(ws)
    return [view(r) for r in rows]


def new_voucher_id(seed: str | None = None) -> str:
    """A voucher id: random, or derived from `seed` (the same seed gives the same id)."""
    digest = uuid.uuid5(uuid.NAMESPACE_URL, seed) if seed is not None else uuid.uuid4()
    return f"GV-{digest.hex[:20].upper()}"


def _check_move(row: Any, status: str, now: datetime) -> None:
    """Conflict when the voucher (its row) may not move to `status` now."""
    if status not in TRANSITIONS[row.status]:
        raise Conflict(f"status: voucher {row.voucher_id!r} is {row.status}; it cannot become {status}")
    if status == "redeemed" and row.expires_at <= now:
        raise Conflict(f"status: voucher {row.voucher_id!r} expired at {row.expires_at.isoformat()}")


def _check_holder(voucher_id: str, status: str, holder: str | None) -> None:
    if status == "distributed" and holder is None:
        raise InvalidInput(f"holder_id: voucher {voucher_id!r} has no holder to be distributed to")


def transition(ws: Workspace, voucher_id: str, status: str, actor: str, *, holder_id: str | None = None,
               reason: str | None = None, expected_version: int | None = None) -> dict[str, Any]:
    """Move a voucher to `status`; distributing needs a holder (given here or at issue); a voucher past its
    expiry can only expire or be cancelled."""
    if status not in VOUCHER_STATUSES:
        raise InvalidInput(f"status: {status!r} is not one of {', '.join(VOUCHER_STATUSES)}")
    now = datetime.now(UTC)
    t = gc_vouchers.c
    with ws.engine.begin() as conn:
        row = conn.execute(select(gc_vouchers).where(t.voucher_id == voucher_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"voucher_id: no voucher {voucher_id!r}")
        check_version("voucher", voucher_id, row.version, expected_version)
        _check_move(row, status, now)
        holder = _holder(conn, holder_id) or row.holder_id
        _check_holder(voucher_id, status, holder)
        values = {"status": status, f"{status}_at": now, "holder_id": holder, "version": row.version + 1,
                  "updated_by": actor, "updated_at": now}
        conn.execute(update(gc_vouchers).where(t.voucher_id == voucher_id).values(**values))
        audit.record(conn, actor=actor, entity_type=ENTITY, entity_id=voucher_id, action=status,
                     reason=reason, before={k: getattr(row, k) for k in _STATE},
                     after={k: values[k] for k in _STATE})
        after = conn.execute(select(gc_vouchers).where(t.voucher_id == voucher_id)).one()
        events.add(conn, [dict(after._mapping)], status, row.status, actor, now, reason)
    events.publish(ws)
    return view(after)


def transition_many(ws: Workspace, voucher_ids: list[str], status: str, actor: str, *,
                    reason: str | None = None) -> int:
    """Move up to MAX_ISSUE vouchers to `status` in one transaction, each as `transition` would (keeping its
    holder), with one Delta commit of their events: all of them, or none when one may not move. The number
    moved."""
    if status not in VOUCHER_STATUSES:
        raise InvalidInput(f"status: {status!r} is not one of {', '.join(VOUCHER_STATUSES)}")
    if not 1 <= len(voucher_ids) <= MAX_ISSUE:
        raise InvalidInput(f"voucher_ids: {len(voucher_ids)} ids; give 1 to {MAX_ISSUE}")
    now = datetime.now(UTC)
    t = gc_vouchers.c
    with ws.engine.begin() as conn:
        rows = conn.execute(select(gc_vouchers).where(t.voucher_id.in_(voucher_ids))  # locked in id order
                            .order_by(t.voucher_id).with_for_update()).all()
        missing = set(voucher_ids) - {r.voucher_id for r in rows}
        if missing:
            raise NotFound(f"voucher_id: no voucher {min(missing)!r}")
        for row in rows:
            _check_move(row, status, now)
            _check_holder(row.voucher_id, status, row.holder_id)
        values = {"status": status, f"{status}_at": now, "version": t.version + 1, "updated_by": actor,
                  "updated_at": now}
        conn.execute(update(gc_vouchers).where(t.voucher_id.in_(voucher_ids)).values(**values))
        audit.record_many(conn, [{"entity_id": r.voucher_id, "action": status, "reason": reason,
                                  "before": {k: getattr(r, k) for k in _STATE},
                                  "after": {"status": status, "holder_id": r.holder_id,
                                            "version": r.version + 1}}
                                 for r in rows], actor=actor, entity_type=ENTITY, at=now)
        after = {r.voucher_id: dict(r._mapping) for r in
                 conn.execute(select(gc_vouchers).where(t.voucher_id.in_(voucher_ids))).all()}
        for from_status in sorted({r.status for r in rows}):
            moved = [after[r.voucher_id] for r in rows if r.status == from_status]
            events.add(conn, moved, status, from_status, actor, now, reason)
    events.publish(ws)
    return len(rows)


def get(ws: Workspace, voucher_id: str) -> dict[str, Any]:
    with ws.read_engine.connect() as conn:
        row = conn.execute(select(gc_vouchers).where(gc_vouchers.c.voucher_id == voucher_id)).first()
    if row is None:
        raise NotFound(f"voucher_id: no voucher {voucher_id!r}")
    return view(row)


def list_vouchers(ws: Workspace, *, program_id: str | None = None, holder_id: str | None = None,
                  status: str | None = None, after: str | None = None, limit: int = 50
                  ) -> tuple[list[dict[str, Any]], str | None]:
    """Vouchers in id order after `after`, filtered; and the cursor of the next page (None on the last)."""
    if status is not None and status not in VOUCHER_STATUSES:
        raise InvalidInput(f"status: {status!r} is not one of {', '.join(VOUCHER_STATUSES)}")
    return keyset_page(ws, gc_vouchers.c.voucher_id, view, after, limit,
                       program_id=program_id, holder_id=holder_id, status=status)
