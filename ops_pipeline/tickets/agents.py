"""Agents: the people tickets go to, members of one or more groups, available (`active_status`) or not.

Their counters are read from the assignment history ("today" in OPS_TIMEZONE). Becoming available, or
joining a group, takes the waiting tickets of its groups; becoming unavailable, leaving a group or being
deleted gives its open tickets (of those groups) to the other active agents by the rule.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ops_pipeline import audit
from ops_pipeline.db.schema import ticket_agent_groups, ticket_agents, ticket_assignments, tickets
from ops_pipeline.errors import Conflict, InvalidInput, NotFound
from ops_pipeline.tickets import model
from ops_pipeline.tickets.assign import (
    ASSIGNED,
    RESOLVED,
    History,
    assign_waiting,
    lock_groups,
    redistribute,
    standings,
    write,
)
from ops_pipeline.workspace import Workspace

ENTITY = "agent"
FIELDS = ("name", "email", "active_status", "group_ids")


def _validate(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise InvalidInput(f"{sorted(unknown)[0]}: cannot be changed on an agent")
    out = dict(changes)
    if "name" in out:
        out["name"] = model.text("name", out["name"], 200)
    if "email" in out:
        out["email"] = model.email(out["email"])
    if "active_status" in out and not isinstance(out["active_status"], bool):
        raise InvalidInput(f"activeStatus: {out['active_status']!r} is not true or false")
    if "group_ids" in out:
        ids = out["group_ids"]
        if not isinstance(ids, list | tuple) or not ids:
            raise InvalidInput("groupIds: at least one group is required")
        out["group_ids"] = sorted({model.identifier("groupIds", g) for g in ids})
    return out


def _check_groups(locked: dict[int, Any], group_ids: list[int]) -> None:
    missing = [g for g in group_ids if g not in locked]
    if missing:
        raise InvalidInput(f"groupIds: no group {missing[0]}")


def _memberships(conn: Connection, agent_ids: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    rows = conn.execute(select(ticket_agent_groups).where(ticket_agent_groups.c.agent_id.in_(agent_ids))
                        .order_by(ticket_agent_groups.c.group_id))
    for r in rows:
        out[r.agent_id].append(r.group_id)
    return out


def _views(conn: Connection, ws: Workspace, *where) -> list[dict[str, Any]]:
    """Agents matching `where` with their groups and the counters from the history."""
    rows = list(conn.execute(select(ticket_agents).where(*where).order_by(ticket_agents.c.agent_id)))
    ids = [r.agent_id for r in rows]
    groups = _memberships(conn, ids)
    assigned = standings(conn, ASSIGNED, ticket_agents.c.agent_id.in_(ids))
    resolved = standings(conn, RESOLVED, ticket_agents.c.agent_id.in_(ids))
    today = model.now().astimezone(ws.settings.tz).date()
    return [
        {"agent_id": r.agent_id, "name": r.name, "email": r.email, "group_ids": groups[r.agent_id],
         "active_status": r.active_status,
         "tickets_assigned_today": assigned[r.agent_id].on(today),
         "tickets_resolved_today": resolved[r.agent_id].on(today),
         "total_tickets_assigned": assigned[r.agent_id].seq,
         "total_tickets_resolved": resolved[r.agent_id].seq,
         "created_at": model.iso(r.created_at), "updated_at": model.iso(r.updated_at)}
        for r in rows
    ]


def _one(conn: Connection, ws: Workspace, agent_id: str) -> dict[str, Any]:
    found = _views(conn, ws, ticket_agents.c.agent_id == agent_id)
    if not found:
        raise NotFound(f"agent {agent_id!r}: not found")
    return found[0]


def _attributes(agent: dict[str, Any]) -> dict[str, Any]:
    return {k: agent[k] for k in ("agent_id", *FIELDS)}


def get_agent(ws: Workspace, agent_id: str) -> dict[str, Any]:
    with ws.read_engine.connect() as conn:
        return _one(conn, ws, agent_id)


def list_agents(ws: Workspace, group_id: int | None = None, active_status: bool | None = None) -> list[dict]:
    where = []
    if group_id is not None:
        where.append(ticket_agents.c.agent_id.in_(
            select(ticket_agent_groups.c.agent_id).where(ticket_agent_groups.c.group_id == group_id)))
    if active_status is not None:
        where.append(ticket_agents.c.active_status == active_status)
    with ws.read_engine.connect() as conn:
        return _views(conn, ws, *where)


def create_agent(
    ws: Workspace, actor: str, agent_id: Any, name: Any, email: Any, group_ids: Any,
    active_status: bool = True,
) -> dict[str, Any]:
    """A new agent in its groups; when active it takes the tickets waiting there."""
    agent_id = model.text("agentId", agent_id, 64)
    values = _validate({"name": name, "email": email, "group_ids": group_ids, "active_status": active_status})

    def work(conn: Connection) -> dict[str, Any]:
        locked = lock_groups(conn, values["group_ids"])
        _check_groups(locked, values["group_ids"])
        if conn.execute(select(ticket_agents.c.agent_id).where(ticket_agents.c.agent_id == agent_id)).first():
            raise Conflict(f"agentId: agent {agent_id!r} already exists", code="DUPLICATE_AGENT")
        past = select(ticket_assignments.c.agent_id).where(ticket_assignments.c.agent_id == agent_id).limit(1)
        if conn.execute(past).first():  # its counters come from that history: a new agent would inherit them
            raise Conflict(f"agentId: {agent_id!r} belonged to a deleted agent; choose another id",
                           code="DUPLICATE_AGENT")
        history = History(conn, ws, actor)
        conn.execute(insert(ticket_agents).values(
            agent_id=agent_id, name=values["name"], email=values["email"],
            active_status=values["active_status"], created_at=history.at, updated_at=history.at))
        conn.execute(insert(ticket_agent_groups), [{"agent_id": agent_id, "group_id": g}
                                                   for g in values["group_ids"]])
        audit.record(conn, actor=actor, entity_type=ENTITY, entity_id=agent_id, action="created",
                     after={"agent_id": agent_id, **values})
        if values["active_status"]:
            assign_waiting(history, values["group_ids"])
        return _one(conn, ws, agent_id)

    return write(ws, work)


def _lock(conn: Connection, agent_id: str) -> None:
    """Lock the agent's row before reading it, so concurrent changes to one agent take turns."""
    a = ticket_agents.c
    conn.execute(select(a.agent_id).where(a.agent_id == agent_id).with_for_update())


def update_agent(ws: Workspace, actor: str, agent_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change name, email, availability or groups, moving tickets as the module docstring says."""
    changes = _validate(changes)

    def work(conn: Connection) -> dict[str, Any]:
        _lock(conn, agent_id)
        before = _attributes(_one(conn, ws, agent_id))
        old_groups = before["group_ids"]
        new_groups = changes.get("group_ids", old_groups)
        locked = lock_groups(conn, old_groups + new_groups)
        _check_groups(locked, new_groups)
        changed = {k: v for k, v in changes.items() if before[k] != v}
        if not changed:
            return _one(conn, ws, agent_id)
        history = History(conn, ws, actor)
        columns = {k: v for k, v in changed.items() if k != "group_ids"}
        conn.execute(update(ticket_agents).where(ticket_agents.c.agent_id == agent_id)
                     .values(**columns, updated_at=history.at))
        if "group_ids" in changed:
            conn.execute(delete(ticket_agent_groups).where(ticket_agent_groups.c.agent_id == agent_id))
            conn.execute(insert(ticket_agent_groups),
                         [{"agent_id": agent_id, "group_id": g} for g in new_groups])
        audit.record(conn, actor=actor, entity_type=ENTITY, entity_id=agent_id, action="updated",
                     before={k: before[k] for k in changed}, after=changed)
        active = changes.get("active_status", before["active_status"])
        left = [g for g in old_groups if g not in new_groups]
        if not active:
            redistribute(history, agent_id)
        else:
            if left:
                redistribute(history, agent_id, tickets.c.group_id.in_(left))
            back = not before["active_status"]
            joined = new_groups if back else [g for g in new_groups if g not in old_groups]
            assign_waiting(history, joined)
        return _one(conn, ws, agent_id)

    return write(ws, work)


def delete_agent(ws: Workspace, actor: str, agent_id: str) -> dict[str, Any]:
    """Delete an agent; its open tickets go to the other active agents of their groups (or wait)."""

    def work(conn: Connection) -> dict[str, Any]:
        _lock(conn, agent_id)
        before = _attributes(_one(conn, ws, agent_id))
        lock_groups(conn, before["group_ids"])
        moved = redistribute(History(conn, ws, actor), agent_id)
        conn.execute(delete(ticket_agent_groups).where(ticket_agent_groups.c.agent_id == agent_id))
        conn.execute(delete(ticket_agents).where(ticket_agents.c.agent_id == agent_id))
        audit.record(conn, actor=actor, entity_type=ENTITY, entity_id=agent_id, action="deleted",
                     before=before)
        return {"agent_id": agent_id, "reassigned_tickets": moved}

    return write(ws, work)
