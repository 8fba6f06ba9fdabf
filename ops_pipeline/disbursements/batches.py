"""Disbursements, received in batches (one per create_disbursements call), cancelled before the schedule
date, and their status; the envelope's counters move under its row lock, all or nothing per call."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from ops_pipeline import audit
from ops_pipeline.db.bulk import insert_rows
from ops_pipeline.db.schema import g2p_batch_steps, g2p_batches, g2p_disbursements, g2p_envelopes
from ops_pipeline.disbursements import codes, envelopes, fields, steps
from ops_pipeline.disbursements.codes import G2PError
from ops_pipeline.money import to_major
from ops_pipeline.workspace import Workspace

MAX_ITEMS = 10_000  # per call
RECEIVED = "RECEIVED"


@dataclass(frozen=True)
class Item:
    """One disbursement as a partner sends it (values unchecked)."""

    envelope_id: Any
    beneficiary_id: Any
    beneficiary_name: Any
    amount: Any
    narrative: Any
    mis_reference: Any = None


@dataclass(frozen=True)
class Batch:
    id: str
    envelope_id: str
    count: int
    amount_minor: int
    disbursement_ids: list[str]


@dataclass(frozen=True)
class Disbursement:
    id: str
    envelope_id: str
    batch_id: str
    beneficiary_id: str
    beneficiary_name: str
    amount_minor: int
    narrative: str
    mis_reference: str | None
    received_at: datetime
    cancelled: bool
    cancelled_at: datetime | None
    status: str
    latest_error: str | None
    shipped_at: datetime | None
    reconciled_at: datetime | None
    reversed_at: datetime | None
    reversal_reason: str | None
    updated_at: datetime


@dataclass(frozen=True)
class BatchControl:
    batch_id: str
    envelope_id: str
    count: int
    amount_minor: int
    created_at: datetime
    steps: list[steps.StepState]


def create_disbursements(
    ws: Workspace, items: list[Item], *, actor: str, owner: str | None = None, message_id: str | None = None
) -> Batch:
    """Accept every item into one new batch of one envelope, or none (G2PError; `item_codes` per item).

    A call repeated with the same `message_id` by the same actor (a retry after a lost answer) returns the
    batch made the first time, and adds nothing; the same `message_id` with other items is refused."""
    _check_size(items)
    item_codes: list[list[str]] = [[] for _ in items]
    envelope_ids = set()
    for item, found in zip(items, item_codes, strict=True):
        for check in (_envelope_id, _beneficiary_id, _name, _narrative, _mis_reference):
            try:
                value = check(item)
            except G2PError as exc:
                found.append(exc.code)
            else:
                if check is _envelope_id:
                    envelope_ids.add(value)
    if len(envelope_ids) > 1:
        raise G2PError(
            codes.MULTIPLE_ENVELOPES_FOUND,
            f"disbursement_envelope_id: the items name {len(envelope_ids)} envelopes, a call takes one",
        )
    if not envelope_ids:
        raise G2PError(
            codes.INVALID_DISBURSEMENT_PAYLOAD,
            "disbursement_envelope_id: no item names a valid envelope",
            item_codes,
        )
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        env = envelopes.lock(conn, envelope_ids.pop(), owner)
        amounts = []
        for item, found in zip(items, item_codes, strict=True):
            try:
                amounts.append(
                    fields.amount(
                        item.amount,
                        env.currency,
                        "disbursement_amount",
                        codes.INVALID_DISBURSEMENT_AMOUNT,
                        allow_zero=False,
                    )
                )
            except G2PError as exc:
                found.append(exc.code)
        if any(item_codes):
            bad = sum(1 for c in item_codes if c)
            first = next(i for i, c in enumerate(item_codes) if c)
            raise G2PError(
                codes.INVALID_DISBURSEMENT_PAYLOAD,
                f"disbursements: {bad} of {len(items)} items are "
                f"invalid; the first is item {first}: {', '.join(item_codes[first])}",
                item_codes,
            )
        total = sum(amounts)
        digest = _digest(items, amounts)
        prior = _replayed(conn, env.id, message_id, actor, digest, len(items), total)
        if prior is not None:
            return prior
        if env.received_count + len(items) > env.declared_count:
            raise G2PError(
                codes.NO_OF_DISBURSEMENTS_EXCEEDS_DECLARED,
                f"disbursements: {env.received_count} received + {len(items)} exceeds the "
                f"{env.declared_count} declared",
            )
        if env.received_amount_minor + total > env.declared_amount_minor:
            raise G2PError(
                codes.TOTAL_DISBURSEMENT_AMOUNT_EXCEEDS_DECLARED,
                f"disbursement_amount: the total received would be "
                f"{to_major(env.received_amount_minor + total, env.currency)} {env.currency}, over the "
                f"{to_major(env.declared_amount_minor, env.currency)} declared",
            )
        batch_id = str(uuid.uuid4())
        batch = Batch(batch_id, env.id, len(items), total, _disbursement_ids(batch_id, len(items)))
        conn.execute(
            insert(g2p_batches).values(
                id=batch.id,
                envelope_id=env.id,
                count=batch.count,
                amount_minor=total,
                message_id=message_id,
                items_sha256=digest,
                created_by=actor,
                created_at=now,
            )
        )
        insert_rows(conn, g2p_batch_steps, steps.initial_rows("batch_id", batch.id, steps.BATCH_STEPS, now))
        insert_rows(
            conn,
            g2p_disbursements,
            [
                {
                    "id": d,
                    "envelope_id": env.id,
                    "batch_id": batch.id,
                    "beneficiary_id": item.beneficiary_id.strip(),
                    "beneficiary_name": item.beneficiary_name.strip(),
                    "amount_minor": minor,
                    "narrative": item.narrative.strip(),
                    "mis_reference": item.mis_reference,
                    "received_at": now,
                    "cancelled": False,
                    "cancelled_at": None,
                    "status": RECEIVED,
                    "latest_error": None,
                    "shipped_at": None,
                    "reconciled_at": None,
                    "reversed_at": None,
                    "reversal_reason": None,
                    "updated_at": now,
                }
                for d, item, minor in zip(batch.disbursement_ids, items, amounts, strict=True)
            ],
        )
        _move_counters(conn, env, len(items), total, now)
        audit.record(
            conn,
            actor=actor,
            entity_type="g2p_batch",
            entity_id=batch.id,
            action="create",
            after={
                "envelope_id": env.id,
                "count": batch.count,
                "amount_minor": total,
                "message_id": message_id,
            },
        )
        _audit_counters(conn, env, len(items), total, actor, f"batch {batch.id} received")
    return batch


def cancel_disbursements(
    ws: Workspace, disbursement_ids: list[Any], *, actor: str, owner: str | None = None
) -> list[str]:
    """Cancel disbursements of one envelope before its schedule date, all or none; the envelope's received
    counters go down. Returns the ids cancelled."""
    _check_size(disbursement_ids)
    item_codes: list[list[str]] = [[] for _ in disbursement_ids]
    keys: list[str | None] = []
    for raw, found in zip(disbursement_ids, item_codes, strict=True):
        try:
            keys.append(fields.uuid_text(raw, "disbursement_id", codes.INVALID_DISBURSEMENT_ID))
        except G2PError as exc:
            found.append(exc.code)
            keys.append(None)
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        wanted = [k for k in keys if k]
        rows = {
            r.id: r for r in conn.execute(select(g2p_disbursements).where(g2p_disbursements.c.id.in_(wanted)))
        }
        if not rows:
            raise G2PError(
                codes.INVALID_DISBURSEMENT_ID,
                "disbursement_id: none of the ids is a disbursement",
                [c or [codes.INVALID_DISBURSEMENT_ID] for c in item_codes],
            )
        if len({r.envelope_id for r in rows.values()}) > 1:
            raise G2PError(
                codes.MULTIPLE_ENVELOPES_FOUND,
                "disbursement_id: the disbursements belong to several envelopes, a call takes one",
            )
        env = envelopes.lock(conn, next(iter(rows.values())).envelope_id, owner)
        if env.schedule_date <= envelopes.today(ws):
            raise G2PError(
                codes.DISBURSEMENT_ENVELOPE_SCHEDULE_DATE_REACHED,
                f"disbursement_envelope_id: {env.id} is scheduled for {env.schedule_date}; "
                "cancellations end the day before",
            )
        # Read again under the lock: a concurrent cancel may have come first.
        rows = {
            r.id: r for r in conn.execute(select(g2p_disbursements).where(g2p_disbursements.c.id.in_(wanted)))
        }
        seen: set[str] = set()
        for key, found in zip(keys, item_codes, strict=True):
            if key is None:
                continue
            row = rows.get(key)
            if row is None or key in seen:
                found.append(codes.INVALID_DISBURSEMENT_ID)
            elif row.cancelled:
                found.append(codes.DISBURSEMENT_ALREADY_CANCELED)
            seen.add(key)
        if any(item_codes):
            bad = sum(1 for c in item_codes if c)
            raise G2PError(
                codes.INVALID_DISBURSEMENT_PAYLOAD,
                f"disbursement_id: {bad} of {len(keys)} items cannot be cancelled",
                item_codes,
            )
        count, amount = len(wanted), sum(rows[k].amount_minor for k in wanted)
        if env.received_count - count < 0:
            raise G2PError(
                codes.NO_OF_DISBURSEMENTS_LESS_THAN_ZERO,
                f"number_of_disbursements_received: {env.received_count} - {count} would be below zero",
            )
        if env.received_amount_minor - amount < 0:
            raise G2PError(
                codes.TOTAL_DISBURSEMENT_AMOUNT_LESS_THAN_ZERO,
                "total_disbursement_amount_received: would be below zero",
            )
        conn.execute(
            update(g2p_disbursements)
            .where(g2p_disbursements.c.id.in_(wanted))
            .values(cancelled=True, cancelled_at=now, updated_at=now)
        )
        _move_counters(conn, env, -count, -amount, now)
        audit.record_many(
            conn,
            [
                {
                    "entity_id": k,
                    "action": "cancel",
                    "before": {"cancelled": False},
                    "after": {"cancelled": True},
                }
                for k in wanted
            ],
            actor=actor,
            entity_type="g2p_disbursement",
            at=now,
        )
        _audit_counters(conn, env, -count, -amount, actor, f"{count} disbursements cancelled")
    return wanted


def disbursement_status(
    ws: Workspace, disbursement_ids: list[Any], owner: str | None = None
) -> list[Disbursement]:
    """The disbursements in the order asked; INVALID_DISBURSEMENT_ID if any is unknown (or not `owner`'s)."""
    _check_size(disbursement_ids)
    keys = [fields.uuid_text(k, "disbursement_id", codes.INVALID_DISBURSEMENT_ID) for k in disbursement_ids]
    query = select(g2p_disbursements).where(g2p_disbursements.c.id.in_(keys))
    if owner is not None:
        query = query.join(g2p_envelopes, g2p_envelopes.c.id == g2p_disbursements.c.envelope_id).where(
            g2p_envelopes.c.created_by == owner
        )
    with ws.read_engine.connect() as conn:
        found = {r.id: Disbursement(**r._mapping) for r in conn.execute(query)}
    missing = [k for k in keys if k not in found]
    if missing:
        raise G2PError(
            codes.INVALID_DISBURSEMENT_ID,
            f"disbursement_id: no disbursement {missing[0]}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            [[] if k in found else [codes.INVALID_DISBURSEMENT_ID] for k in keys],
        )
    return [found[k] for k in keys]


def batch_control(ws: Workspace, batch_id: Any, owner: str | None = None) -> BatchControl:
    """A batch and the state of each of its steps."""
    key = fields.uuid_text(
        batch_id, "disbursement_batch_control_id", codes.INVALID_DISBURSEMENT_BATCH_CONTROL_ID
    )
    with ws.read_engine.connect() as conn:
        batch = conn.execute(select(g2p_batches).where(g2p_batches.c.id == key)).first()
        if batch is not None and owner is not None:
            creator = conn.execute(
                select(g2p_envelopes.c.created_by).where(g2p_envelopes.c.id == batch.envelope_id)
            ).scalar()
            batch = batch if creator == owner else None
        if batch is None:
            raise G2PError(
                codes.INVALID_DISBURSEMENT_BATCH_CONTROL_ID, f"disbursement_batch_control_id: no batch {key}"
            )
        rows = conn.execute(select(g2p_batch_steps).where(g2p_batch_steps.c.batch_id == key))
        order = {s: i for i, s in enumerate(steps.BATCH_STEPS)}
        states = sorted((steps.state(r) for r in rows), key=lambda s: (order.get(s.step, len(order)), s.step))
    return BatchControl(
        batch.id, batch.envelope_id, batch.count, batch.amount_minor, batch.created_at, states
    )


def _disbursement_ids(batch_id: str, count: int) -> list[str]:
    """The n-th disbursement of a batch has a UUID derived from the batch's: a replay finds them again."""
    base = uuid.UUID(batch_id)
    return [str(uuid.uuid5(base, str(n))) for n in range(count)]


def _digest(items: list[Item], amounts: list[int]) -> str:
    """SHA-256 of what a call carried: per item beneficiary, name, amount, narrative, reference."""
    h = hashlib.sha256()
    for item, minor in zip(items, amounts, strict=True):
        values = (item.beneficiary_id, item.beneficiary_name, minor, item.narrative, item.mis_reference)
        h.update(json.dumps(values).encode() + b"\n")
    return h.hexdigest()


def _replayed(
    conn, envelope_id: str, message_id: str | None, actor: str, digest: str, count: int, total: int
) -> Batch | None:
    """The batch an earlier call with this `message_id` made, if any (under the envelope's lock)."""
    if message_id is None:
        return None
    b = g2p_batches.c
    prior = conn.execute(
        select(b.id, b.count, b.items_sha256).where(
            b.envelope_id == envelope_id, b.message_id == message_id, b.created_by == actor
        )
    ).first()
    if prior is None:
        return None
    if prior.items_sha256 != digest:
        raise G2PError(
            codes.INVALID_DISBURSEMENT_PAYLOAD,
            f"header.message_id: {message_id!r} already made "
            f"batch {prior.id} of {prior.count} disbursements with other items; use a new message_id",
        )
    return Batch(prior.id, envelope_id, count, total, _disbursement_ids(prior.id, count))


def _check_size(items: list) -> None:
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise G2PError(
            codes.INVALID_DISBURSEMENT_PAYLOAD,
            f"message: must be a list of 1 to {MAX_ITEMS} items, got {fields.shown(items)[:40]}",
        )


def _move_counters(conn, env: envelopes.Envelope, count: int, amount: int, now: datetime) -> None:
    """Under the envelope's row lock (taken by `envelopes.lock` in this transaction)."""
    conn.execute(
        update(g2p_envelopes)
        .where(g2p_envelopes.c.id == env.id)
        .values(
            received_count=g2p_envelopes.c.received_count + count,
            received_amount_minor=g2p_envelopes.c.received_amount_minor + amount,
            updated_at=now,
        )
    )


def _audit_counters(conn, env: envelopes.Envelope, count: int, amount: int, actor: str, reason: str) -> None:
    audit.record(
        conn,
        actor=actor,
        entity_type="g2p_envelope",
        entity_id=env.id,
        action="received",
        before={"received_count": env.received_count, "received_amount_minor": env.received_amount_minor},
        after={
            "received_count": env.received_count + count,
            "received_amount_minor": env.received_amount_minor + amount,
        },
        reason=reason,
    )


def _envelope_id(item: Item) -> str:
    return fields.uuid_text(
        item.envelope_id, "disbursement_envelope_id", codes.INVALID_DISBURSEMENT_ENVELOPE_ID
    )


def _beneficiary_id(item: Item) -> str:
    return fields.text(item.beneficiary_id, "beneficiary_id", codes.INVALID_BENEFICIARY_ID, 128)


def _name(item: Item) -> str:
    return fields.text(item.beneficiary_name, "beneficiary_name", codes.INVALID_BENEFICIARY_NAME, 256)


def _narrative(item: Item) -> str:
    return fields.text(item.narrative, "narrative", codes.INVALID_NARRATIVE, 512)


def _mis_reference(item: Item) -> None:
    if item.mis_reference is not None:
        fields.text(item.mis_reference, "mis_reference_number", codes.INVALID_DISBURSEMENT_PAYLOAD, 128)
