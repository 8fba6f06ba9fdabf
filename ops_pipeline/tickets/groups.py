"""Groups (teams such as KYC or Risk): create, read, rename or (de)activate, delete with their open tickets
moved elsewhere."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ops_pipeline import audit
from ops_pipeline.db.schema import ticket_agent_groups, ticket_groups, tickets
from ops_pipeline.errors import Conflict, InvalidInput, NotFound
from ops_pipeline.tickets import model
from ops_pipeline.tickets.assign import (
    UNASSIGNED,
    History,
    assign_waiting,
    find,
    lock_groups,
    open_tickets,
    write,
)
from ops_pipeline.workspace import Workspace

ENTITY = "group"


def view(row) -> dict[str, Any]:
    return {"group_id": row.group_id, "name": row.name, "active_status": row.active_status,
            "created_at": model.iso(row.created_at), "updated_at": model.iso(row.updated_at)}


def by_name(conn: Connection, name: str):
    return conn.execute(select(ticket_groups).where(ticket_groups.c.name == name)).first()


def _unique_name(conn: Connection, name: str) -> str:
    existing = by_name(conn, name)
    if existing is not None:
        raise Conflict(f"name: group {existing.group_id} is already named {name!r}", code="DUPLICATE_GROUP")
    return name


def insert_group(conn: Connection, actor: str, name: str, active_status: bool = True) -> dict[str, Any]:
    """Insert a group in the caller's transaction (also how ticket sources make their configured group)."""
    at = model.now()
    values = {"name": _unique_name(conn, name), "active_status": active_status, "created_at": at,
              "updated_at": at}
    group_id = conn.execute(insert(ticket_groups).returning(ticket_groups.c.group_id), values).scalar_one()
    created = {"group_id": group_id, **values}
    audit.record(conn, actor=actor, entity_type=ENTITY, entity_id=str(group_id), action="created",
                 after=created)
    return created


def create_group(ws: Workspace, actor: str, name: Any, active_status: bool = True) -> dict[str, Any]:
    name = model.text("name", name, 128)
    with ws.engine.begin() as conn:
        created = insert_group(conn, actor, name, active_status)
    return {**created, "created_at": model.iso(created["created_at"]),
            "updated_at": model.iso(created["updated_at"])}


def _row(conn: Connection, group_id: int, lock: bool = False):
    return find(conn, ticket_groups.c.group_id, group_id, "group", lock)


def get_group(ws: Workspace, group_id: int) -> dict[str, Any]:
    with ws.read_engine.connect() as conn:
        return view(_row(conn, group_id))


def list_groups(ws: Workspace, active_status: bool | None = None) -> list[dict[str, Any]]:
    query = select(ticket_groups).order_by(ticket_groups.c.group_id)
    if active_status is not None:
        query = query.where(ticket_groups.c.active_status == active_status)
    with ws.read_engine.connect() as conn:
        return [view(r) for r in conn.execute(query)]


def update_group(ws: Workspace, actor: str, group_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Rename (`name`) or (de)activate (`active_status`): an inactive group takes no new tickets."""
    unknown = set(changes) - {"name", "active_status"}
    if unknown:
        raise InvalidInput(f"{sorted(unknown)[0]}: cannot be changed on a group")
    changes = dict(changes)
    if "name" in changes:
        changes["name"] = model.text("name", changes["name"], 128)
    if "active_status" in changes and not isinstance(changes["active_status"], bool):
        raise InvalidInput(f"activeStatus: {changes['active_status']!r} is not true or false")
    with ws.engine.begin() as conn:
        row = _row(conn, group_id, lock=True)
        before = view(row)
        changed = {k: v for k, v in changes.items() if before[k] != v}
        if "name" in changed:
            _unique_name(conn, changed["name"])
        if changed:
            at = model.now()
            conn.execute(update(ticket_groups).where(ticket_groups.c.group_id == group_id)
                         .values(**changed, updated_at=at))
            audit.record(conn, actor=actor, entity_type=ENTITY, entity_id=str(group_id), action="updated",
                         before={k: before[k] for k in changed}, after=changed)
        return view(_row(conn, group_id))


def delete_group(ws: Workspace, actor: str, group_id: int, move_to: int | None = None) -> dict[str, Any]:
    """Delete a group; refused (409) while it has open tickets, unless `move_to` names the group that takes
    them (assigned there by the rule). Its agents stay, without this membership."""

    def work(conn: Connection) -> dict[str, Any]:
        locked = lock_groups(conn, [group_id] + ([move_to] if move_to is not None else []))
        if group_id not in locked:
            raise NotFound(f"group {group_id}: not found")
        moving = open_tickets(conn, tickets.c.group_id == group_id)
        if moving and move_to is None:
            raise Conflict(f"group {group_id}: has {len(moving)} open tickets; move them first (moveTo)",
                           code="GROUP_HAS_OPEN_TICKETS")
        history = History(conn, ws, actor)
        if moving:
            target = locked.get(move_to)
            if target is None or move_to == group_id:
                raise InvalidInput(f"moveTo: {move_to} is not another existing group")
            if not target.active_status:
                raise Conflict(f"moveTo: group {move_to} is inactive", code="GROUP_INACTIVE")
            conn.execute(update(tickets).where(tickets.c.group_id == group_id, tickets.c.status == model.OPEN)
                         .values(group_id=move_to, agent_id=None, assigned_at=None, updated_at=history.at))
            audit.record_many(conn, [
                {"entity_id": str(t.id), "action": "moved",
                 "before": {"group_id": group_id, "agent_id": t.agent_id},
                 "after": {"group_id": move_to, "agent_id": None}} for t in moving
            ], actor=actor, entity_type="ticket", at=history.at)
            for t in moving:
                if t.agent_id is not None:
                    history.add(t.id, t.agent_id, group_id, UNASSIGNED)
            assign_waiting(history, [move_to])  # they wait there now, with any already waiting
        before = view(locked[group_id])
        conn.execute(delete(ticket_agent_groups).where(ticket_agent_groups.c.group_id == group_id))
        conn.execute(delete(ticket_groups).where(ticket_groups.c.group_id == group_id))
        audit.record(conn, actor=actor, entity_type=ENTITY, entity_id=str(group_id), action="deleted",
                     before=before)
        return {"group_id": group_id, "moved_tickets": len(moving), "moved_to": move_to if moving else None}

    return write(ws, work)

