"""Tickets: create (one, or a batch assigned in memory under the group locks), read with filters and a
cursor, update (status, agent, priority) one or many, delete.

    view = create_ticket(ws, "alice", group_id=1, user_id="U1", priority=2)    # view["agent_id"]: the pick
    views = create_tickets(ws, "loader", [NewTicket(group_id=1, user_id="U2")])
    page = list_tickets(ws, Filters(status="open", agent_id="a1"), limit=50)  # .tickets, .next_after_id
    update_tickets(ws, "bob", [view["id"]], {"status": "resolved"})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ops_pipeline import audit
from ops_pipeline.db.schema import ticket_agent_groups, ticket_agents, ticket_groups, tickets
from ops_pipeline.errors import Conflict, InvalidInput, NotFound
from ops_pipeline.tickets import model
from ops_pipeline.tickets.assign import RESOLVED, Assigner, History, find, lock_groups, note, place, write
from ops_pipeline.workspace import Workspace

ENTITY = "ticket"
CHANGEABLE = ("status", "agent_id", "priority")


@dataclass(frozen=True)
class NewTicket:
    group_id: int
    user_id: str | None = None
    priority: int = model.PRIORITY_DEFAULT
    source: str = "manual"
    reference: str | None = None
    description: str | None = None

    def validated(self) -> NewTicket:
        return NewTicket(
            group_id=model.identifier("groupId", self.group_id),
            user_id=model.text("userId", self.user_id, 128, required=False),
            priority=model.priority(self.priority),
            source=model.choice("source", self.source, model.SOURCES),
            reference=model.text("reference", self.reference, 128, required=False),
            description=model.text("description", self.description, 4000, required=False),
        )


def view(row: Any) -> dict[str, Any]:
    m = row if isinstance(row, dict) else row._mapping
    return {c.name: model.iso(m[c.name]) if isinstance(m[c.name], datetime) else m[c.name] for c in tickets.c}


# -- creating ------------------------------------------------------------------------------------------


def create_ticket(ws: Workspace, actor: str, **fields: Any) -> dict[str, Any]:
    """One ticket, assigned by the rule (or waiting when its group has no active agent)."""
    return create_tickets(ws, actor, [NewTicket(**fields)])[0]


def create_tickets(
    ws: Workspace,
    actor: str,
    batch: Sequence[NewTicket],
    skip_open_duplicates: bool = False,
    on_created: Callable[[Connection, list[dict[str, Any]]], None] | None = None,
) -> list[dict[str, Any]]:
    """Create and assign a batch in one transaction: groups locked, agents picked in memory, rows inserted
    with one statement per table. An open ticket for the same (source, reference) is a Conflict, or with
    `skip_open_duplicates` leaves that item out (ticket sources). `on_created` runs in the transaction with
    the new tickets (alerts)."""
    if not 1 <= len(batch) <= model.MAX_BATCH:
        raise InvalidInput(f"tickets: {len(batch)} given; a batch holds 1 to {model.MAX_BATCH}")
    items = [item.validated() for item in batch]

    def work(conn: Connection) -> list[dict[str, Any]]:
        locked = lock_groups(conn, (i.group_id for i in items))
        for item in items:
            group = locked.get(item.group_id)
            if group is None:
                raise InvalidInput(f"groupId: no group {item.group_id}")
            if not group.active_status:
                raise Conflict(f"groupId: group {item.group_id} is inactive", code="GROUP_INACTIVE")
        todo = _without_open_duplicates(conn, items, skip_open_duplicates)
        if not todo:
            return []
        history = History(conn, ws, actor)
        assigners = {g: Assigner(history, g) for g in sorted({i.group_id for i in todo})}
        picks = [assigners[i.group_id].assign(None) for i in todo]
        at = history.at
        rows = [
            {**asdict(item), "agent_id": pick and pick["agent_id"], "status": model.OPEN, "created_by": actor,
             "created_at": at, "updated_at": at, "assigned_at": pick and at, "resolved_at": None}
            for item, pick in zip(todo, picks, strict=True)
        ]
        ids = conn.execute(insert(tickets).returning(tickets.c.id, sort_by_parameter_order=True), rows)
        for row, ticket_id, pick in zip(rows, ids.scalars(), picks, strict=True):
            row["id"] = ticket_id
            if pick:
                pick["ticket_id"] = ticket_id
        history.flush()
        for r in rows:
            note("opened", r["group_id"])
        audit.record_many(conn, [{"entity_id": str(r["id"]), "action": "created", "after": r} for r in rows],
                          actor=actor, entity_type=ENTITY, at=at)
        created = [view(r) for r in rows]
        if on_created is not None:
            on_created(conn, created)
        return created

    return write(ws, work)


def _without_open_duplicates(conn: Connection, items: list[NewTicket], skip: bool) -> list[NewTicket]:
    refs = {i.reference for i in items if i.reference is not None}
    existing = {}
    if refs:
        found = conn.execute(select(tickets.c.id, tickets.c.source, tickets.c.reference)
                             .where(tickets.c.status == model.OPEN, tickets.c.reference.in_(refs)))
        existing = {(r.source, r.reference): r.id for r in found}
    out = []
    for item in items:
        key = (item.source, item.reference)
        if item.reference is not None and key in existing:
            if not skip:
                what = f"ticket {existing[key]}" if existing[key] else "an earlier ticket of this batch"
                raise Conflict(f"reference: {what} is open for {item.source} {item.reference!r}",
                               code="DUPLICATE_TICKET")
            continue
        if item.reference is not None:
            existing[key] = None
        out.append(item)
    return out


# -- reading -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    agent_id: str | None = None
    group_id: int | None = None
    status: str | None = None
    priority: int | None = None
    source: str | None = None
    reference: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def where(self) -> list:
        if self.status is not None:
            model.choice("status", self.status, model.STATUSES)
        if self.source is not None:
            model.choice("source", self.source, model.SOURCES)
        for name, value in (("createdFrom", self.created_from), ("createdTo", self.created_to)):
            if value is not None and value.tzinfo is None:
                raise InvalidInput(f"{name}: {value.isoformat()} has no time zone")
        equal = [(tickets.c[name], getattr(self, name))
                 for name in ("agent_id", "group_id", "status", "priority", "source", "reference")]
        where = [column == value for column, value in equal if value is not None]
        if self.created_from is not None:
            where.append(tickets.c.created_at >= self.created_from)
        if self.created_to is not None:
            where.append(tickets.c.created_at < self.created_to)
        return where


@dataclass(frozen=True)
class Page:
    tickets: list[dict[str, Any]]
    next_after_id: int | None  # the cursor of the next page; None on the last


def list_tickets(ws: Workspace, filters: Filters, after_id: int | None = None, limit: int = 50) -> Page:
    """Tickets matching `filters`, newest first, `limit` (1..500) at a time after the cursor `after_id`."""
    if not 1 <= limit <= model.MAX_PAGE:
        raise InvalidInput(f"limit: {limit} is not between 1 and {model.MAX_PAGE}")
    where = filters.where()
    if after_id is not None:
        where.append(tickets.c.id < after_id)
    with ws.read_engine.connect() as conn:
        rows = [view(r) for r in conn.execute(select(tickets).where(*where).order_by(tickets.c.id.desc())
                                              .limit(limit))]
    return Page(rows, rows[-1]["id"] if len(rows) == limit else None)


def get_ticket(ws: Workspace, ticket_id: int) -> dict[str, Any]:
    with ws.read_engine.connect() as conn:
        return view(find(conn, tickets.c.id, ticket_id, "ticket"))


# -- changing ------------------------------------------------------------------------------------------


def _validate(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise InvalidInput(f"{sorted(unknown)[0]}: cannot be changed on a ticket")
    if not changes:
        raise InvalidInput(f"changes: give at least one of {', '.join(CHANGEABLE)}")
    out = dict(changes)
    if "status" in out:
        model.choice("status", out["status"], model.STATUSES)
    if "priority" in out:
        model.priority(out["priority"])
    if "agent_id" in out:
        out["agent_id"] = model.text("agentId", out["agent_id"], 64)
    return out


def update_tickets(
    ws: Workspace, actor: str, ticket_ids: Sequence[int], changes: dict[str, Any], reason: str | None = None
) -> list[dict[str, Any]]:
    """Apply `changes` (status, agent_id, priority) to every ticket, all or none: resolve or reopen, give to
    a named active agent of the ticket's group, reprioritize. One audit record per ticket changed (with
    `reason`)."""
    ids = sorted({model.identifier("ticketIds", i) for i in ticket_ids})
    if not 1 <= len(ids) <= model.MAX_BATCH:
        raise InvalidInput(f"ticketIds: {len(ids)} given; 1 to {model.MAX_BATCH} are accepted")
    changes = _validate(changes)

    def work(conn: Connection) -> list[dict[str, Any]]:
        chosen = tickets.c.id.in_(ids)
        groups = dict(conn.execute(select(tickets.c.id, tickets.c.group_id).where(chosen)).all())
        missing = [i for i in ids if i not in groups]
        if missing:
            raise NotFound(f"ticket {missing[0]}: not found")
        lock_groups(conn, groups.values())
        rows = {r.id: r for r in conn.execute(select(tickets).where(chosen).with_for_update())}
        history = History(conn, ws, actor)
        for ticket_id in ids:
            _apply(history, rows[ticket_id], changes, reason)
        history.flush()
        return [view(r) for r in conn.execute(select(tickets).where(chosen).order_by(tickets.c.id))]

    return write(ws, work)


def _apply(history: History, row: Any, changes: dict[str, Any], reason: str | None = None) -> None:
    conn, at = history.conn, history.at
    before = view(row)
    changed = {k: v for k, v in changes.items() if before[k] != v}
    if not changed:
        return
    if "agent_id" in changed:
        if row.status == model.RESOLVED and changed.get("status") != model.OPEN:
            raise Conflict(f"ticket {row.id}: is resolved; reopen it to reassign", code="TICKET_RESOLVED")
        _check_agent(conn, changed["agent_id"], row.group_id)
        history.add(row.id, changed["agent_id"], row.group_id, "assigned")
        changed["assigned_at"] = at
    if changed.get("status") == model.RESOLVED:
        changed["resolved_at"] = at
        resolver = changed.get("agent_id", row.agent_id)  # given and resolved in one change counts too
        if resolver is not None:
            history.add(row.id, resolver, row.group_id, RESOLVED)
        else:
            note(RESOLVED, row.group_id)
    elif changed.get("status") == model.OPEN:
        _check_reopen(conn, row)
        changed["resolved_at"] = None
    conn.execute(update(tickets).where(tickets.c.id == row.id).values(**changed, updated_at=at))
    status = changed.get("status")
    action = {model.RESOLVED: "resolved", model.OPEN: "reopened"}.get(status) or (
        ("reassigned" if row.agent_id else "assigned") if "agent_id" in changed else "updated")
    audit.record(conn, actor=history.actor, entity_type=ENTITY, entity_id=str(row.id), action=action,
                 before={k: before[k] for k in changed}, after=changed, reason=reason)
    reopened_unassigned = status == model.OPEN and "agent_id" not in changed
    if reopened_unassigned and not _available(conn, row.agent_id, row.group_id):
        place(history, row.group_id, [row])


def _available(conn: Connection, agent_id: str | None, group_id: int) -> bool:
    if agent_id is None:
        return False
    found = conn.execute(
        select(ticket_agents.c.active_status).join(
            ticket_agent_groups, ticket_agent_groups.c.agent_id == ticket_agents.c.agent_id)
        .where(ticket_agents.c.agent_id == agent_id, ticket_agent_groups.c.group_id == group_id)
    ).first()
    return bool(found and found.active_status)


def _check_agent(conn: Connection, agent_id: str, group_id: int) -> None:
    if not _available(conn, agent_id, group_id):
        raise Conflict(f"agentId: {agent_id!r} is not an available agent of group {group_id}",
                       code="AGENT_UNAVAILABLE")


def _check_reopen(conn: Connection, row: Any) -> None:
    g = ticket_groups.c
    group = conn.execute(select(g.active_status).where(g.group_id == row.group_id)).first()
    if group is None or not group.active_status:
        raise Conflict(f"groupId: ticket {row.id}'s group {row.group_id} is deleted or inactive; "
                       "reopening it there would leave it waiting for no one", code="GROUP_INACTIVE")
    if row.reference is None:
        return
    other = conn.execute(select(tickets.c.id).where(
        tickets.c.source == row.source, tickets.c.reference == row.reference, tickets.c.status == model.OPEN)
    ).scalar()
    if other is not None:
        raise Conflict(f"ticket {row.id}: ticket {other} is already open for {row.source} {row.reference!r}",
                       code="DUPLICATE_TICKET")


def delete_ticket(ws: Workspace, actor: str, ticket_id: int) -> dict[str, Any]:
    """Delete a ticket (its assignment history stays: the assignments did happen)."""
    with ws.engine.begin() as conn:
        before = view(find(conn, tickets.c.id, ticket_id, "ticket", lock=True))
        conn.execute(delete(tickets).where(tickets.c.id == ticket_id))
        audit.record(conn, actor=actor, entity_type=ENTITY, entity_id=str(ticket_id), action="deleted",
                     before=before)
    return before

