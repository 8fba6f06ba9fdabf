"""Program assignments: a distributor or customer may sell a program on agreed terms from a start date;
unassigning ends it on a date. Two assignments of one party and program never overlap in time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert, select, update

from ops_pipeline import audit
from ops_pipeline.db.schema import gc_assignments
from ops_pipeline.errors import Conflict, InvalidInput, NotFound
from ops_pipeline.giftcards import model
from ops_pipeline.giftcards.kinds import PARTIES, PROGRAMS
from ops_pipeline.giftcards.records import Kind, jsonable, keyset_page, require, view
from ops_pipeline.workspace import Workspace

ASSIGNMENTS = Kind("assignment", gc_assignments, "id", model.Assignment, lambda a: {})
_FAR = date.max


def _view(row: Any) -> dict[str, Any]:
    return view(ASSIGNMENTS, row)


def assign(ws: Workspace, data: dict[str, Any], actor: str) -> dict[str, Any]:
    """Assign a program to an active party; Conflict if it overlaps another assignment of the pair."""
    a = ASSIGNMENTS.validate(data)
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        for kind, key, field in ((PARTIES, a.party_id, "party_id"), (PROGRAMS, a.program_id, "program_id")):
            if require(conn, kind, key, field).status != "active":
                raise Conflict(f"{field}: {kind.noun} {key!r} is inactive")
        t = gc_assignments.c
        pair = conn.execute(select(gc_assignments).with_for_update()
                            .where(t.party_id == a.party_id, t.program_id == a.program_id)).all()
        for other in pair:
            if other.starts_on <= (a.ends_on or _FAR) and a.starts_on <= (other.ends_on or _FAR):
                raise Conflict(f"starts_on: party {a.party_id!r} has program {a.program_id!r} from "
                               f"{other.starts_on} to {other.ends_on or 'open'} (assignment {other.id})")
        details = a.model_dump(mode="json")
        new_id = conn.execute(insert(gc_assignments).values(
            party_id=a.party_id, program_id=a.program_id, starts_on=a.starts_on, ends_on=a.ends_on,
            status="active", details=details, version=1, created_by=actor, created_at=now, updated_by=actor,
            updated_at=now).returning(t.id)).scalar_one()
        audit.record(conn, actor=actor, entity_type=ASSIGNMENTS.entity_type, entity_id=str(new_id),
                     action="assign", after=details)
        return _view(conn.execute(select(gc_assignments).where(t.id == new_id)).one())


def unassign(ws: Workspace, assignment_id: int, actor: str, ends_on: date | None = None,
             reason: str | None = None) -> dict[str, Any]:
    """End an assignment on `ends_on` (default: today in OPS_TIMEZONE); Conflict if it has ended already."""
    ends_on = ends_on or datetime.now(ws.settings.tz).date()
    t = gc_assignments.c
    with ws.engine.begin() as conn:
        row = conn.execute(select(gc_assignments).where(t.id == assignment_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"assignment_id: no assignment {assignment_id}")
        if row.status != "active":
            raise Conflict(f"assignment_id: assignment {assignment_id} is unassigned (ends on {row.ends_on})")
        if ends_on < row.starts_on:
            raise InvalidInput(f"ends_on: {ends_on} is before the assignment's starts_on {row.starts_on}")
        if row.ends_on is not None and ends_on > row.ends_on:
            raise InvalidInput(f"ends_on: {ends_on} is after the agreed ends_on {row.ends_on}")
        details = {**row.details, "ends_on": ends_on.isoformat()}
        conn.execute(update(gc_assignments).where(t.id == assignment_id).values(
            ends_on=ends_on, status="unassigned", details=details, version=row.version + 1, updated_by=actor,
            updated_at=datetime.now(UTC)))
        audit.record(conn, actor=actor, entity_type=ASSIGNMENTS.entity_type, entity_id=str(assignment_id),
                     action="unassign", reason=reason,
                     before={"status": row.status, "ends_on": jsonable(row.ends_on)},
                     after={"status": "unassigned", "ends_on": ends_on.isoformat()})
        return _view(conn.execute(select(gc_assignments).where(t.id == assignment_id)).one())


def list_assignments(ws: Workspace, *, party_id: str | None = None, program_id: str | None = None,
                     on: date | None = None, after: int | None = None, limit: int = 50
                     ) -> tuple[list[dict[str, Any]], int | None]:
    """Assignments in id order after `after`; `on`: only those in force that day."""
    t = gc_assignments.c
    in_force = (t.starts_on <= on, t.ends_on.is_(None) | (t.ends_on >= on)) if on is not None else ()
    return keyset_page(ws, t.id, _view, after, limit, *in_force, party_id=party_id, program_id=program_id)
