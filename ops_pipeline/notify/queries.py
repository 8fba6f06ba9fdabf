"""What the outbox sent or holds for ops: alerts (fund-out failure rate, missed slots) and opened tickets
(failed jobs, manual jobs, failed runs, ...), each with its delivery attempts. Merchants' own notices
(payouts) are not ops alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, select

from ops_pipeline.db.schema import notification_attempts, outbox
from ops_pipeline.errors import InvalidInput
from ops_pipeline.notify.outbox import DEAD, PENDING, SENT, UNSENT
from ops_pipeline.workspace import Workspace

ALERT_EVENTS = ("ops.alert", "ticket.opened")
STATUSES = (PENDING, SENT, UNSENT, DEAD)
# kind: an ops.alert's payload `alert`, or an opened ticket's `source`
KINDS = {
    "job": "Failed job",
    "manual_job": "Manual job",
    "fundout.failure_rate": "Fund-out failure rate",
    "fundout.missed_slots": "Missed fund-out slots",
    "run_failure": "Failed pipeline run",
    "reconciliation": "Reconciliation",
    "manual": "Ticket",
}
PAGE = 50
o = outbox.c
KIND = case((o.event == "ops.alert", o.payload["alert"].as_string()), else_=o.payload["source"].as_string())


@dataclass(frozen=True)
class Attempt:
    at: datetime
    channel: str
    target: str | None
    ok: bool
    detail: str | None
    duration_ms: int


@dataclass(frozen=True)
class Alert:
    id: int
    created_at: datetime
    kind: str
    subject: str
    channel: str
    recipient: str | None
    status: str
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
    entity_type: str | None
    entity_id: str | None
    attempts: list[Attempt]

    @property
    def label(self) -> str:
        return KINDS.get(self.kind, self.kind)


@dataclass(frozen=True)
class AlertPage:
    alerts: list[Alert]
    next_before: int | None  # the last row's id when there are more rows


COLUMNS = (o.id, o.created_at, KIND.label("kind"), o.subject, o.channel, o.recipient, o.status,
           o.next_attempt_at, o.sent_at, o.last_error, o.entity_type, o.entity_id)


def alerts(ws: Workspace, status: str | None = None, kind: str | None = None, before: int | None = None,
           limit: int = PAGE) -> AlertPage:
    """Ops alerts newest first (keyset on id), by delivery status and kind."""
    if status and status not in STATUSES:
        raise InvalidInput(f"status: {status!r} is not one of {', '.join(STATUSES)}")
    if kind and kind not in KINDS:
        raise InvalidInput(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    query = select(*COLUMNS).where(o.event.in_(ALERT_EVENTS)).order_by(o.id.desc()).limit(limit + 1)
    if status:
        query = query.where(o.status == status)
    if kind:
        query = query.where(kind == KIND)
    if before is not None:
        query = query.where(o.id < before)
    with ws.read_engine.connect() as conn:
        found = _with_attempts(conn, conn.execute(query).all())
    return AlertPage(found[:limit], found[limit - 1].id if len(found) > limit else None)


def alerts_after(ws: Workspace, after: int, limit: int = PAGE) -> tuple[list[Alert], int]:
    """Ops alerts with an id above `after`, oldest first (what a live page has not shown yet), and the id to
    ask after next time: past the other rows seen too (payout notices), so each poll reads only new rows."""
    with ws.read_engine.connect() as conn:
        newest = conn.execute(select(func.max(o.id))).scalar() or 0
        rows = conn.execute(select(*COLUMNS).where(o.event.in_(ALERT_EVENTS), o.id > after, o.id <= newest)
                            .order_by(o.id).limit(limit)).all()
        found = _with_attempts(conn, rows)
    return found, found[-1].id if len(found) == limit else max(after, newest)


def newest_id(ws: Workspace) -> int:
    """The outbox's newest row id (0 when empty): where a live page starts (any row: ids only grow)."""
    with ws.read_engine.connect() as conn:
        return conn.execute(select(func.max(o.id))).scalar() or 0


def _with_attempts(conn: Connection, rows: list[Any]) -> list[Alert]:
    """The rows as alerts with their delivery attempts (one query for all of them)."""
    a = notification_attempts.c
    tries: dict[int, list[Attempt]] = {}
    if rows:
        for r in conn.execute(select(a.outbox_id, a.at, a.channel, a.target, a.ok, a.detail, a.duration_ms)
                              .where(a.outbox_id.in_([r.id for r in rows])).order_by(a.outbox_id, a.id)):
            tries.setdefault(r.outbox_id, []).append(Attempt(*r[1:]))
    return [Alert(*r, attempts=tries.get(r.id, [])) for r in rows]
