"""The transactional outbox: events are rows written in the caller's transaction, delivered later.

Every event goes to the webhook channel (`OPS_WEBHOOK_URL`); events with an email recipient also go by
email. With a channel unconfigured the row is kept and marked `unsent`: recorded, not sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ops_pipeline.db.bulk import insert_rows
from ops_pipeline.db.schema import outbox

PENDING, SENT, UNSENT, DEAD = "pending", "sent", "unsent", "dead"


@dataclass(frozen=True)
class Notification:
    event: str  # e.g. fundout.paid
    subject: str
    payload: dict[str, Any] = field(default_factory=dict)
    email: str | None = None  # also send by email to this address
    entity_type: str | None = None
    entity_id: str | None = None

    def rows(self, now: datetime) -> list[dict[str, Any]]:
        common = dict(
            created_at=now,
            event=self.event,
            subject=self.subject,
            payload=self.payload,
            entity_type=self.entity_type,
            entity_id=self.entity_id,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
        )
        rows = [dict(common, channel="webhook", recipient=None)]
        if self.email:
            rows.append(dict(common, channel="email", recipient=self.email))
        return rows


def enqueue(conn: Connection, notifications: list[Notification]) -> int:
    """Write the notifications' outbox rows in the caller's transaction; returns how many rows."""
    now = datetime.now(UTC)
    rows = [row for n in notifications for row in n.rows(now)]
    insert_rows(conn, outbox, rows)
    return len(rows)


@dataclass(frozen=True)
class Backlog:
    """Rows due for delivery now: how many, the newest id and the attempts made so far (a run key)."""

    count: int
    newest_id: int | None
    attempts: int


def due(conn: Connection, now: datetime | None = None) -> Backlog:
    """What waits for delivery (new rows, or retries past their backoff) at `now`."""
    o = outbox.c
    newest, attempts, count = conn.execute(
        select(func.max(o.id), func.sum(o.attempts), func.count())
        .where(o.status == PENDING, o.next_attempt_at <= (now or datetime.now(UTC)))
    ).one()
    return Backlog(count, newest, attempts or 0)


def size(conn: Connection) -> int:
    """Every row the outbox holds, delivered or not."""
    return conn.execute(select(func.count()).select_from(outbox)).scalar_one()
