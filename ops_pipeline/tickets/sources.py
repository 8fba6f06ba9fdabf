"""Tickets the system opens: a job that ended Failed, a manual job waiting for a person, a failed Dagster
run, a reconciliation break, each in the group `Settings.ticket_group(source)` names (made on first
use), with `reference` linking back (job id, run id, stable break id).

An event is covered, and opens nothing, when a ticket for its reference is open or was still open at the
event (resolved at or after it): so scanning again (a sensor tick repeated, a look-back, the CLI) never
opens a second ticket, a job failing again while its ticket is open adds nothing, and a job that fails
again after its ticket was resolved opens a new one. The unique index on open (source, reference)
settles races between two scanners.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, cast, exists, literal, or_, select
from sqlalchemy.exc import IntegrityError

from ops_pipeline.db.schema import jobs, jobs_archive, ticket_agents, tickets
from ops_pipeline.db.types import UTCDateTime
from ops_pipeline.errors import Conflict
from ops_pipeline.jobqueue.model import State
from ops_pipeline.notify import Notification, enqueue
from ops_pipeline.tickets.groups import by_name, insert_group
from ops_pipeline.tickets.model import MAX_BATCH, OPEN, RESOLVED
from ops_pipeline.tickets.tickets import NewTicket, create_tickets, update_tickets
from ops_pipeline.workspace import Workspace

log = logging.getLogger(__name__)
ACTOR = "system"
PAGE = 500
MANUAL_JOB_TYPE = "manual"
RECON_BREAK = "reconciliation"  # a reconciliation break; reference: its stable break id


def _alert(conn: Connection, opened: list[dict[str, Any]]) -> None:
    """Alerts about tickets the system opened, in their transaction: a webhook event each, and a mail to
    the agent it went to (through the notification outbox)."""
    a = ticket_agents.c
    agent_ids = sorted({t["agent_id"] for t in opened if t["agent_id"]})
    emails = dict(
        tuple(r) for r in conn.execute(select(a.agent_id, a.email).where(a.agent_id.in_(agent_ids)))
    )
    notices = []
    for t in opened:
        log.warning(
            "ticket %s opened for %s %s (group %s, agent %s): %s",
            t["id"],
            t["source"],
            t["reference"],
            t["group_id"],
            t["agent_id"],
            t["description"],
        )
        payload = {
            k: t[k] for k in ("id", "source", "reference", "group_id", "agent_id", "priority", "description")
        }
        notices.append(
            Notification(
                event="ticket.opened",
                subject=f"Ticket {t['id']}: {t['source']} {t['reference']}",
                payload=payload,
                email=emails.get(t["agent_id"]),
                entity_type="ticket",
                entity_id=str(t["id"]),
            )
        )
    enqueue(conn, notices)


def group_for(ws: Workspace, source: str) -> int:
    """The id of the group the settings route `source` to, made (active, audited) when missing."""
    name = ws.settings.ticket_group(source)
    try:
        with ws.engine.begin() as conn:
            found = by_name(conn, name)
            return found.group_id if found is not None else insert_group(conn, ACTOR, name)["group_id"]
    except IntegrityError:  # made meanwhile by another scanner: read it
        with ws.engine.connect() as conn:
            return by_name(conn, name).group_id


def _covered(source: str, reference, occurred_at):
    """SQL: a ticket of `source` for `reference` is open, or was resolved at or after `occurred_at`."""
    return exists().where(
        tickets.c.source == source,
        tickets.c.reference == reference,
        or_(tickets.c.resolved_at.is_(None), tickets.c.resolved_at >= occurred_at),
    )


def _open(ws: Workspace, source: str, found: list[tuple[str, int, str]]) -> list[dict[str, Any]]:
    """Open a ticket per (reference, priority, description) in the source's group, skipping open ones."""
    if not found:
        return []
    group_id = group_for(ws, source)
    batch = [
        NewTicket(
            group_id=group_id,
            priority=priority,
            source=source,
            reference=reference,
            description=description[:4000],
        )
        for reference, priority, description in found
    ]
    return create_tickets(ws, ACTOR, batch, skip_open_duplicates=True, on_created=_alert)


@dataclass(frozen=True)
class Scan:
    opened: list[dict[str, Any]]
    cursor: datetime | None  # when the latest failure it opened a ticket for happened; None: none


def open_tickets_for_failed_jobs(ws: Workspace, since: datetime | None = None, limit: int = PAGE) -> Scan:
    """A ticket (source `job`) for each job that ended Failed after `since` and is not covered, oldest first,
    at most `limit`."""
    a = jobs_archive
    query = (
        select(a.c.id, a.c.type, a.c.priority, a.c.last_error, a.c.archived_at)
        .where(a.c.state == State.FAILED.value, ~_covered("job", cast(a.c.id, String), a.c.archived_at))
        .order_by(a.c.archived_at, a.c.id)
        .limit(limit)
    )
    if since is not None:
        query = query.where(a.c.archived_at > since)
    with ws.read_engine.connect() as conn:
        rows = list(conn.execute(query))
    opened = _open(
        ws, "job", [(str(r.id), r.priority, f"job {r.id} ({r.type}) failed: {r.last_error}") for r in rows]
    )
    return Scan(opened, rows[-1].archived_at if rows else None)


def open_tickets_for_manual_jobs(ws: Workspace, limit: int = PAGE) -> list[dict[str, Any]]:
    """A ticket (source `manual_job`) for each manual job waiting for a person that has none yet."""
    j = jobs
    query = (
        select(j.c.id, j.c.priority, j.c.attributes, j.c.created_at)
        .where(
            j.c.type == MANUAL_JOB_TYPE,
            j.c.state == State.CREATED.value,
            ~_covered("manual_job", cast(j.c.id, String), j.c.created_at),
        )
        .order_by(j.c.id)
        .limit(limit)
    )
    with ws.read_engine.connect() as conn:
        rows = list(conn.execute(query))
    return _open(
        ws,
        "manual_job",
        [(str(r.id), r.priority, f"manual job {r.id}: {r.attributes.get('title')}") for r in rows],
    )


def resolve_tickets_of_finished_manual_jobs(ws: Workspace, limit: int = PAGE) -> list[dict[str, Any]]:
    """Resolve the open `manual_job` tickets whose job no longer waits (completed, or ended otherwise)."""
    t = tickets.c
    waiting = select(jobs.c.id).where(
        cast(jobs.c.id, String) == t.reference,
        jobs.c.type == MANUAL_JOB_TYPE,
        jobs.c.state == State.CREATED.value,
    )
    with ws.read_engine.connect() as conn:
        done = (
            conn.execute(
                select(t.id)
                .where(t.source == "manual_job", t.status == OPEN, ~exists(waiting))
                .order_by(t.id)
                .limit(limit)
            )
            .scalars()
            .all()
        )
    return update_tickets(ws, ACTOR, done, {"status": RESOLVED}) if done else []


def open_ticket_for_run_failure(
    ws: Workspace, run_id: str, job_name: str, message: str, failed_at: datetime
) -> dict[str, Any] | None:
    """A ticket (source `run_failure`, reference the run id) for a failed Dagster run; None when covered."""
    with ws.read_engine.connect() as conn:
        when = literal(failed_at, UTCDateTime())
        covered = conn.execute(select(_covered("run_failure", run_id, when))).scalar()
    if covered:
        return None
    opened = _open(ws, "run_failure", [(run_id, 2, f"Dagster run {run_id} of {job_name} failed: {message}")])
    return opened[0] if opened else None


@dataclass(frozen=True)
class Event:
    """Something that may need a ticket: its reference, when it first happened, priority and description."""

    reference: str
    occurred_at: datetime
    priority: int
    description: str


def open_tickets_for_events(ws: Workspace, source: str, events: list[Event]) -> list[dict[str, Any]]:
    """A ticket of `source` for each event not covered (see the module doc), in batches; a concurrent
    scanner opening the same ticket first is no error (the unique index, then a second look)."""
    opened: list[dict[str, Any]] = []
    for start in range(0, len(events), MAX_BATCH):
        chunk = events[start:start + MAX_BATCH]
        for attempt in (1, 2):
            todo = _uncovered(ws, source, chunk)
            try:
                opened += _open(ws, source, [(e.reference, e.priority, e.description) for e in todo])
                break
            except Conflict:
                if attempt == 2:
                    raise
    return opened


def _uncovered(ws: Workspace, source: str, events: list[Event]) -> list[Event]:
    refs = sorted({e.reference for e in events})
    t = tickets.c
    with ws.read_engine.connect() as conn:
        found = conn.execute(select(t.reference, t.resolved_at)
                             .where(t.source == source, t.reference.in_(refs)))
        history: dict[str, list] = {}
        for reference, resolved_at in found:
            history.setdefault(reference, []).append(resolved_at)
    return [e for e in events
            if not any(r is None or r >= e.occurred_at for r in history.get(e.reference, ()))]


def open_references(ws: Workspace, source: str) -> list[str]:
    """The references of the open tickets of `source`."""
    t = tickets.c
    with ws.read_engine.connect() as conn:
        return list(conn.execute(select(t.reference).where(t.source == source, t.status == OPEN)).scalars())


def resolve_tickets_for(ws: Workspace, source: str, references: list[str], actor: str,
                        reason: str) -> list[dict[str, Any]]:
    """Resolve the open tickets of `source` for these references (audited with `reason`)."""
    if not references:
        return []
    t = tickets.c
    with ws.read_engine.connect() as conn:
        ids = list(conn.execute(select(t.id).where(t.source == source, t.status == OPEN,
                                                   t.reference.in_(sorted(set(references))))).scalars())
    return update_tickets(ws, actor, ids, {"status": RESOLVED}, reason=reason) if ids else []
