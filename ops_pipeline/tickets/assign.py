"""The assignment rule, the assignment history it reads and writes, and placing tickets with agents.

Among the active agents of a ticket's group, a ticket goes to the one with the fewest assignments today
(the local day in OPS_TIMEZONE), ties to the least recently assigned, then to the lowest agent id. Writers
lock the group rows and their agents first (`lock_groups`; on SQLite the write lock taken at BEGIN), so
creators in one group take turns and every pick sees the picks before it.

Counters come from the history, one row per event and never updated. `seq` numbers an agent's rows of one
kind and `day_seq` those of one local day; the agent locks keep the numbering dense and the unique index on
(agent, kind, seq) proves it (a writer that did not lock an agent fails on it; `write` runs it again), so
the latest row of a kind gives "assigned today" and "assigned in total" in one index probe.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Column, Connection, and_, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from ops_pipeline import audit
from ops_pipeline.db.schema import (
    ticket_agent_groups,
    ticket_agents,
    ticket_assignments,
    ticket_groups,
    tickets,
)
from ops_pipeline.errors import Conflict, NotFound
from ops_pipeline.observability import metrics
from ops_pipeline.tickets import model
from ops_pipeline.workspace import Workspace

T = TypeVar("T")
ASSIGNED, UNASSIGNED, RESOLVED = "assigned", "unassigned", "resolved"
_ATTEMPTS = 5
_CHUNK = 1000
_AGENT_LOCK_SPACE = 7301  # first key of the agents' advisory locks


# Ticket events of the transaction in progress: (kind, group id, agent id), counted once it commits.
_EVENTS: ContextVar[list[tuple[str, int, str]] | None] = ContextVar("ticket_events", default=None)
_COUNTERS = {"opened": None, ASSIGNED: metrics.TICKETS_ASSIGNED, RESOLVED: metrics.TICKETS_RESOLVED}


def note(kind: str, group_id: int, agent_id: str | None = None) -> None:
    """Count a ticket event (opened, assigned, resolved) if the transaction of `write` commits."""
    events = _EVENTS.get()
    if events is not None and kind in _COUNTERS:
        events.append((kind, group_id, agent_id or ""))


def _count(events: list[tuple[str, int, str]]) -> None:
    for kind, group_id, agent_id in events:
        if kind == "opened":
            metrics.TICKETS_OPENED.labels(str(group_id)).inc()
        else:
            _COUNTERS[kind].labels(str(group_id), agent_id).inc()


def write(ws: Workspace, work: Callable[[Connection], T]) -> T:
    """Run `work` in one transaction, again when a concurrent one took the same history number first; an
    open ticket for the same source reference (the unique index) is a Conflict. Its events are counted
    (metrics) once it commits."""
    for attempt in range(_ATTEMPTS):
        events: list[tuple[str, int, str]] = []
        token = _EVENTS.set(events)
        try:
            with ws.engine.begin() as conn:
                result = work(conn)
            _count(events)
            return result
        except IntegrityError as exc:
            message = str(exc.orig)
            if "uq_tickets_open_reference" in message or "tickets.source, tickets.reference" in message:
                raise Conflict("reference: an open ticket exists for this source reference",
                               code="DUPLICATE_TICKET") from None
            if "ticket_assignments" not in message or attempt == _ATTEMPTS - 1:
                raise
        finally:
            _EVENTS.reset(token)
    raise AssertionError("unreachable")


def lock_groups(conn: Connection, group_ids: Iterable[int]) -> dict[int, Any]:
    """The rows of these groups, locked until commit in id order, and (PostgreSQL) their agents by an
    advisory lock each in key order, so that groups sharing an agent take turns too; missing groups are
    absent from the answer."""
    ids = sorted(set(group_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(ticket_groups).where(ticket_groups.c.group_id.in_(ids)).order_by(ticket_groups.c.group_id)
        .with_for_update()
    )
    locked = {r.group_id: r for r in rows}
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK_AGENTS, {"ids": ids})
    return locked


_LOCK_AGENTS = text(
    f"SELECT pg_advisory_xact_lock({_AGENT_LOCK_SPACE}, k) FROM (SELECT DISTINCT hashtext(agent_id) AS k "
    "FROM ticket_agent_groups WHERE group_id = ANY(:ids) ORDER BY k) AS keys"
)


def find(conn: Connection, key: Column, value: Any, what: str, lock: bool = False) -> Any:
    """The row of `key`'s table where `key` is `value` (locked with `lock`); NotFound naming `what`."""
    query = select(key.table).where(key == value)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"{what} {value}: not found")
    return row


@dataclass(frozen=True)
class Latest:
    """An agent's latest history row of one kind (zeros when it has none)."""

    seq: int = 0
    day: date | None = None
    day_seq: int = 0
    rank: int = 0  # the row id: later rows rank higher

    def on(self, day: date) -> int:
        return self.day_seq if self.day == day else 0


def standings(conn: Connection, kind: str, *where) -> dict[str, Latest]:
    """Agents matching `where` (on ticket_agents) with their latest row of `kind`."""
    a, h, x = ticket_agents, ticket_assignments, ticket_assignments.alias("x")
    top = select(func.max(x.c.seq)).where(x.c.agent_id == a.c.agent_id, x.c.kind == kind).scalar_subquery()
    joined = a.outerjoin(h, and_(h.c.agent_id == a.c.agent_id, h.c.kind == kind, h.c.seq == top))
    rows = conn.execute(
        select(a.c.agent_id, h.c.id, h.c.seq, h.c.local_day, h.c.day_seq).select_from(joined).where(*where)
    )
    return {r.agent_id: Latest(r.seq, r.local_day, r.day_seq, r.id) if r.id else Latest() for r in rows}


class History:
    """Numbers the history rows of one transaction in memory and writes them in one statement."""

    def __init__(self, conn: Connection, ws: Workspace, actor: str, at: datetime | None = None):
        self.conn, self.actor = conn, actor
        self.at = at or model.now()
        self.day = self.at.astimezone(ws.settings.tz).date()
        self.latest: dict[tuple[str, str], Latest] = {}
        self.rows: list[dict[str, Any]] = []
        self._rank = 1 << 62  # above every stored id

    def know(self, kind: str, found: dict[str, Latest]) -> None:
        for agent_id, latest in found.items():
            self.latest.setdefault((agent_id, kind), latest)

    def add(self, ticket_id: int | None, agent_id: str, group_id: int, kind: str) -> dict[str, Any]:
        """A row for this event; `ticket_id` may be filled in before `flush` (tickets being inserted)."""
        if (agent_id, kind) not in self.latest:
            self.know(kind, standings(self.conn, kind, ticket_agents.c.agent_id == agent_id))
        last = self.latest.get((agent_id, kind), Latest())
        self._rank += 1
        self.latest[(agent_id, kind)] = Latest(last.seq + 1, self.day, last.on(self.day) + 1, self._rank)
        row = {"ticket_id": ticket_id, "agent_id": agent_id, "group_id": group_id, "kind": kind,
               "at": self.at, "local_day": self.day, "seq": last.seq + 1, "day_seq": last.on(self.day) + 1,
               "actor": self.actor}
        self.rows.append(row)
        return row

    def flush(self) -> None:
        if self.rows:
            self.conn.execute(insert(ticket_assignments), self.rows)
            for row in self.rows:
                note(row["kind"], row["group_id"], row["agent_id"])
            self.rows = []


class Assigner:
    """The rule for one group: a heap of its active agents by (assigned today, last assignment, id)."""

    def __init__(self, history: History, group_id: int, exclude: Iterable[str] = ()):
        self.history, self.group_id = history, group_id
        members = select(ticket_agent_groups.c.agent_id).where(ticket_agent_groups.c.group_id == group_id)
        found = standings(
            history.conn, ASSIGNED, ticket_agents.c.active_status, ticket_agents.c.agent_id.in_(members),
            ticket_agents.c.agent_id.not_in(list(exclude)),
        )
        history.know(ASSIGNED, found)
        day = history.day
        self.heap = [(latest.on(day), latest.rank, agent_id) for agent_id, latest in found.items()]
        heapq.heapify(self.heap)

    def assign(self, ticket_id: int | None) -> dict[str, Any] | None:
        """The history row of the next pick, or None when the group has no active agent."""
        if not self.heap:
            return None
        while True:  # an agent of several groups may have been given tickets by another group's Assigner
            agent_id = self.heap[0][2]
            latest = self.history.latest[(agent_id, ASSIGNED)]
            now = (latest.on(self.history.day), latest.rank, agent_id)
            if now == self.heap[0]:
                break
            heapq.heapreplace(self.heap, now)  # counts only grow: re-keying the top lazily is exact
        row = self.history.add(ticket_id, agent_id, self.group_id, ASSIGNED)
        rank = self.history.latest[(agent_id, ASSIGNED)].rank
        heapq.heapreplace(self.heap, (row["day_seq"], rank, agent_id))
        return row


def place(history: History, group_id: int, moving: Sequence[Any], exclude: Iterable[str] = ()) -> int:
    """Give `moving` (rows with `id`, `agent_id`, in this order) to the group's agents by the rule, or leave
    them waiting when it has none; set-based updates, history and audit. Returns how many changed hands."""
    conn, at = history.conn, history.at
    assigner = Assigner(history, group_id, exclude)
    by_agent: dict[str | None, list[int]] = defaultdict(list)
    records = []
    for ticket in moving:
        row = assigner.assign(ticket.id)
        new = row["agent_id"] if row else None
        if new == ticket.agent_id:
            continue
        if new is None:
            history.add(ticket.id, ticket.agent_id, group_id, UNASSIGNED)
        by_agent[new].append(ticket.id)
        action = "assigned" if ticket.agent_id is None else "unassigned" if new is None else "reassigned"
        records.append({"entity_id": str(ticket.id), "action": action,
                        "before": {"agent_id": ticket.agent_id}, "after": {"agent_id": new}})
    for agent_id, ids in by_agent.items():
        for i in range(0, len(ids), _CHUNK):
            conn.execute(
                update(tickets).where(tickets.c.id.in_(ids[i : i + _CHUNK]))
                .values(agent_id=agent_id, assigned_at=at if agent_id else None, updated_at=at)
            )
    history.flush()
    audit.record_many(conn, records, actor=history.actor, entity_type="ticket", at=at)
    return len(records)


def open_tickets(conn: Connection, *where) -> list[Any]:
    """Open tickets matching `where`, most urgent first, then oldest."""
    return list(conn.execute(
        select(tickets.c.id, tickets.c.agent_id, tickets.c.group_id)
        .where(tickets.c.status == model.OPEN, *where).order_by(tickets.c.priority, tickets.c.id)
    ))


def assign_waiting(history: History, group_ids: Iterable[int]) -> int:
    """Give the waiting tickets of these (locked) groups to their active agents."""
    return sum(
        place(history, group_id, open_tickets(history.conn, tickets.c.group_id == group_id,
                                              tickets.c.agent_id.is_(None)))
        for group_id in sorted(set(group_ids))
    )


def redistribute(history: History, agent_id: str, *where) -> int:
    """Move the agent's open tickets (matching `where`) to the other active agents of each ticket's group."""
    by_group: dict[int, list[Any]] = defaultdict(list)
    for ticket in open_tickets(history.conn, tickets.c.agent_id == agent_id, *where):
        by_group[ticket.group_id].append(ticket)
    return sum(place(history, g, moving, exclude=[agent_id]) for g, moving in sorted(by_group.items()))
