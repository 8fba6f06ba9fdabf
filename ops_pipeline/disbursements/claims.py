"""Claiming step rows with a lease: PENDING (or ERROR with attempts left) -> PROCESSING -> PROCESSED | ERROR.

A claim takes rows under row locks (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two runners never take the
same row; SQLite's `BEGIN IMMEDIATE` writer lock otherwise) and counts an attempt. The lease (`lease_until`)
is the claim's token: a runner finishes or renews a row only while the lease is the one it took, so a
runner whose lease expired and was recovered (back to PENDING, by the next claim) changes nothing
(`LeaseLost` rolls its transaction back). Every change is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Select, Table, select, update

from ops_pipeline import audit
from ops_pipeline.db.schema import g2p_batch_steps, g2p_envelope_steps
from ops_pipeline.disbursements.steps import (
    BATCH_STEPS,
    ENVELOPE_STEPS,
    ERROR,
    PENDING,
    PROCESSED,
    PROCESSING,
)
from ops_pipeline.workspace import Workspace


class LeaseLost(Exception):
    """The row is no longer this runner's (its lease expired and another runner recovered it)."""


@dataclass(frozen=True)
class Claim:
    step: str
    owner_id: str  # the envelope id or the batch id
    attempts: int  # this one included
    lease_until: datetime


def table_of(step: str) -> tuple[Table, str]:
    if step in ENVELOPE_STEPS:
        return g2p_envelope_steps, "envelope_id"
    if step in BATCH_STEPS:
        return g2p_batch_steps, "batch_id"
    raise ValueError(f"step: {step!r} is not one of {', '.join(ENVELOPE_STEPS + BATCH_STEPS)}")


def _audit(conn: Connection, step: str, changes: list[dict], actor: str, now: datetime) -> None:
    entity_type = "g2p_envelope_step" if step in ENVELOPE_STEPS else "g2p_batch_step"
    records = [dict(c, entity_id=f"{c.pop('owner_id')}:{step}") for c in changes]
    audit.record_many(conn, records, actor=actor, entity_type=entity_type, at=now)


def recover_stale(conn: Connection, step: str, now: datetime, actor: str) -> int:
    """Rows PROCESSING past their lease go back to PENDING (their runner died); returns how many."""
    table, key = table_of(step)
    c = table.c
    stale = conn.execute(
        update(table).where(c.step == step, c.status == PROCESSING, c.lease_until < now)
        .values(status=PENDING, lease_until=None, latest_error="lease expired: the runner stopped",
                updated_at=now)
        .returning(c[key])
    ).scalars().all()
    _audit(conn, step, [dict(owner_id=o, action="recover", before={"status": PROCESSING},
                             after={"status": PENDING}, reason="lease expired") for o in stale], actor, now)
    return len(stale)


def claim(ws: Workspace, step: str, eligible: Select, *, worker: str, limit: int, max_attempts: int,
          lease_seconds: float) -> list[Claim]:
    """Up to `limit` rows of `step` whose owner id is in `eligible`, oldest first, leased to `worker`."""
    table, key = table_of(step)
    c = table.c
    now = datetime.now(UTC)
    lease = now + timedelta(seconds=lease_seconds)
    with ws.engine.begin() as conn:
        recover_stale(conn, step, now, worker)
        query = (
            select(c[key], c.attempts, c.status)
            .where(c.step == step, c.status.in_((PENDING, ERROR)), c.attempts < max_attempts,
                   c[key].in_(eligible.scalar_subquery()))
            .order_by(c.created_at, c[key]).limit(limit)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=table)
        rows = conn.execute(query).all()
        for row in rows:
            conn.execute(update(table).where(c[key] == row[0], c.step == step).values(
                status=PROCESSING, attempts=row.attempts + 1, lease_until=lease, updated_at=now))
        _audit(conn, step, [dict(owner_id=r[0], action="claim", before={"status": r.status},
                                 after={"status": PROCESSING, "attempts": r.attempts + 1}) for r in rows],
               worker, now)
    return [Claim(step, r[0], r.attempts + 1, lease) for r in rows]


def _guarded(table: Table, key: str, held: Claim):
    c = table.c
    return update(table).where(c[key] == held.owner_id, c.step == held.step, c.status == PROCESSING,
                               c.lease_until == held.lease_until)


def renew(conn: Connection, held: Claim, lease_seconds: float) -> Claim:
    """The lease extended (a long step's heartbeat, per chunk); `LeaseLost` if it is no longer ours."""
    table, key = table_of(held.step)
    until = datetime.now(UTC) + timedelta(seconds=lease_seconds)
    if conn.execute(_guarded(table, key, held).values(lease_until=until)).rowcount != 1:
        raise LeaseLost(f"{held.step} of {held.owner_id}: the lease was lost")
    return replace(held, lease_until=until)


def finish(conn: Connection, held: Claim, *, error: str | None, actor: str) -> str:
    """PROCESSED (no `error`) or ERROR with the error, in the caller's transaction; returns the status."""
    table, key = table_of(held.step)
    now = datetime.now(UTC)
    status = ERROR if error else PROCESSED
    values = dict(status=status, latest_error=error, lease_until=None, updated_at=now,
                  processed_at=now if status == PROCESSED else None)
    if conn.execute(_guarded(table, key, held).values(**values)).rowcount != 1:
        raise LeaseLost(f"{held.step} of {held.owner_id}: the lease was lost")
    _audit(conn, held.step, [dict(owner_id=held.owner_id, action=status.lower(),
                                  before={"status": PROCESSING}, after={"status": status},
                                  reason=error)], actor, now)
    return status
