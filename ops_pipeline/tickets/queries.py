"""Read models of the console's ticket pages: a group's queue (waiting tickets first, keyset pages), the
agents' load today, a ticket's assignment history, and where an agent's tickets went when it changed.

    page = queue(ws, group_id=1, after=None)        # .tickets, .next_after ("w12" / "a40")
    load = group_load(ws, group_id=1)               # one Load per agent of the group
    ids = open_ticket_ids(ws, "bob")                # before marking bob away ...
    moves = moved(ws, ids, actor="alice", at=...)   # ... then [(ticket id, new agent id or None)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ops_pipeline.db.schema import ticket_agents, ticket_assignments, tickets
from ops_pipeline.errors import InvalidInput, NotFound
from ops_pipeline.tickets import model
from ops_pipeline.tickets.agents import get_agent, list_agents
from ops_pipeline.tickets.assign import ASSIGNED, UNASSIGNED
from ops_pipeline.tickets.groups import list_groups
from ops_pipeline.tickets.tickets import Filters, Page, list_tickets, view
from ops_pipeline.workspace import Workspace

PAGE = 50
WAITING, ASSIGNED_SEGMENT = "w", "a"  # the queue's two segments, in the order shown


@dataclass(frozen=True)
class Home:
    """The tickets page: the viewer's own open tickets (when it is an agent), one group's queue and load."""

    me: str | None  # the viewer's agent id, None when no agent has it
    mine: Page | None
    groups: list[dict[str, Any]]
    group: dict[str, Any] | None  # the group shown (None when there is none)
    queue: QueuePage | None
    load: list[Load]


def home(ws: Workspace, sub: str, group_id: int | None, after: str | None, mine_after: int | None) -> Home:
    """`sub`'s open tickets if it is an agent id; the group `group_id` (default: the viewer's first group,
    else the first group) with its queue from the cursor `after` and its agents' load."""
    try:
        agent: dict[str, Any] | None = get_agent(ws, sub)
    except NotFound:
        agent = None
    me = agent and agent["agent_id"]
    mine = list_tickets(ws, Filters(agent_id=me, status=model.OPEN), after_id=mine_after) if me else None
    groups = list_groups(ws)
    by_id = {g["group_id"]: g for g in groups}
    if group_id is not None and group_id not in by_id:
        raise InvalidInput(f"group: {group_id} is not a group")
    if group_id is None and groups:
        group_id = agent["group_ids"][0] if agent and agent["group_ids"] else groups[0]["group_id"]
    if group_id is None:
        return Home(me, mine, groups, None, None, [])
    return Home(me, mine, groups, by_id[group_id], queue(ws, group_id, after), group_load(ws, group_id))


@dataclass(frozen=True)
class QueuePage:
    tickets: list[dict[str, Any]]  # views: waiting ones by id, then assigned ones by id
    next_after: str | None  # the cursor of the next page ("w<id>" or "a<id>"); None on the last


def _cursor(after: str | None) -> tuple[str, int]:
    if after is None:
        return WAITING, 0
    segment, digits = after[:1], after[1:]
    if segment not in (WAITING, ASSIGNED_SEGMENT) or not digits.isascii() or not digits.isdigit() \
            or len(digits) > 19:
        raise InvalidInput(f"after: {after[:40]!r} is not a cursor from a previous page")
    return segment, int(digits)


def queue(ws: Workspace, group_id: int, after: str | None = None, limit: int = PAGE) -> QueuePage:
    """The group's open tickets: waiting for an agent first, then assigned, each by id, `limit` a page.
    Keyset on each segment (ix_tickets_waiting, then ix_tickets_group)."""
    segment, after_id = _cursor(after)
    t = tickets.c
    found: list[tuple[str, Any]] = []
    with ws.read_engine.connect() as conn:
        for name, who in ((WAITING, t.agent_id.is_(None)), (ASSIGNED_SEGMENT, t.agent_id.is_not(None))):
            if name == WAITING and segment == ASSIGNED_SEGMENT:
                continue
            start = after_id if name == segment else 0
            rows = conn.execute(
                select(tickets).where(t.group_id == group_id, t.status == model.OPEN, who, t.id > start)
                .order_by(t.id).limit(limit + 1 - len(found))
            )
            found += [(name, r) for r in rows]
            if len(found) > limit:
                break
    page = found[:limit]
    more = len(found) > limit
    return QueuePage([view(r) for _, r in page], f"{page[-1][0]}{page[-1][1].id}" if more else None)


@dataclass(frozen=True)
class Load:
    agent_id: str
    name: str
    available: bool
    open_now: int
    assigned_today: int
    resolved_today: int


def group_load(ws: Workspace, group_id: int) -> list[Load]:
    """Each agent of the group: open tickets now (all groups), assigned and resolved today (the history's
    day counters, the same the REST API returns)."""
    agents = list_agents(ws, group_id)
    ids = [a["agent_id"] for a in agents]
    t = tickets.c
    with ws.read_engine.connect() as conn:
        open_now = dict(conn.execute(
            select(t.agent_id, func.count()).where(t.agent_id.in_(ids), t.status == model.OPEN)
            .group_by(t.agent_id)
        ).all()) if ids else {}
    return [Load(a["agent_id"], a["name"], a["active_status"], open_now.get(a["agent_id"], 0),
                 a["tickets_assigned_today"], a["tickets_resolved_today"]) for a in agents]


def names(ws: Workspace, agent_ids: Sequence[str]) -> dict[str, str]:
    """Agent id -> name, for the agents that exist."""
    ids = sorted({a for a in agent_ids if a})
    if not ids:
        return {}
    with ws.read_engine.connect() as conn:
        return dict(conn.execute(select(ticket_agents.c.agent_id, ticket_agents.c.name)
                                 .where(ticket_agents.c.agent_id.in_(ids))).all())


@dataclass(frozen=True)
class Event:
    """One row of a ticket's assignment history."""

    at: datetime
    kind: str  # assigned | unassigned | resolved
    agent_id: str
    agent_name: str | None  # None once the agent is deleted
    actor: str


def assignment_history(ws: Workspace, ticket_id: int) -> list[Event]:
    h, a = ticket_assignments.c, ticket_agents.c
    with ws.read_engine.connect() as conn:
        rows = conn.execute(
            select(h.at, h.kind, h.agent_id, a.name, h.actor)
            .select_from(ticket_assignments.outerjoin(ticket_agents, a.agent_id == h.agent_id))
            .where(h.ticket_id == ticket_id).order_by(h.id)
        )
        return [Event(*r) for r in rows]


def open_ticket_ids(ws: Workspace, agent_id: str) -> list[int]:
    """The agent's open tickets (ix_tickets_agent)."""
    t = tickets.c
    with ws.read_engine.connect() as conn:
        return list(conn.execute(select(t.id).where(t.agent_id == agent_id, t.status == model.OPEN)
                                 .order_by(t.id)).scalars())


def moved(ws: Workspace, ticket_ids: Sequence[int], actor: str, at: datetime) -> list[tuple[int, str | None]]:
    """Where these tickets went in the change `actor` made at `at`: the history rows it wrote for them
    (ix_ticket_assignments_ticket), as (ticket id, new agent id, or None when it waits for one)."""
    h = ticket_assignments.c
    out: list[tuple[int, str | None]] = []
    with ws.read_engine.connect() as conn:
        for i in range(0, len(ticket_ids), 1000):
            rows = conn.execute(
                select(h.ticket_id, h.kind, h.agent_id)
                .where(h.ticket_id.in_(ticket_ids[i : i + 1000]), h.at == at, h.actor == actor,
                       h.kind.in_([ASSIGNED, UNASSIGNED]))
                .order_by(h.ticket_id, h.id)
            )
            out += [(r.ticket_id, r.agent_id if r.kind == ASSIGNED else None) for r in rows]
    return out
