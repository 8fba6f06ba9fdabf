"""Tickets and the audit trail over REST: `ops` writes, `analyst` reads; answers are camelCase.

A new ticket goes to the active agent of its group with the fewest tickets assigned today (ties: least
recently assigned, then lowest id), or waits (`agentId` null) until one is available.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BeforeValidator, Field, WithJsonSchema

from ops_pipeline import audit
from ops_pipeline.api.agents import READ_ERRORS, WRITE_ERRORS, Reader, Writer
from ops_pipeline.api.deps import WorkspaceDep
from ops_pipeline.api.models import MAX_ID, Body, Cursor, Id, IdPath, Timestamp, camel, text
from ops_pipeline.tickets import model
from ops_pipeline.tickets import tickets as service
from ops_pipeline.tickets.batching import CreateBatcher

router = APIRouter(prefix="/api", tags=["tickets"])
MAX_BULK_CREATE = 1000
Priority = Annotated[int, Field(ge=model.PRIORITY_MIN, le=model.PRIORITY_MAX, description="1 most urgent.")]
Status = Literal[model.STATUSES]
Source = Literal[model.SOURCES]


def _int_as_text(value: Any) -> Any:
    """The spec sends an integer userId, other clients a string: both are kept as the string."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= MAX_ID:
            raise ValueError(f"an integer userId is from 0 to {MAX_ID}")
        return str(value)
    return value


UserId = Annotated[str, Field(min_length=1, max_length=128), BeforeValidator(_int_as_text), WithJsonSchema(
    {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 128},
               {"type": "integer", "minimum": 0, "maximum": MAX_ID}]})]


class CreateTicket(Body):
    group_id: Id
    user_id: UserId | None = None
    priority: Priority = model.PRIORITY_DEFAULT
    source: Source = "manual"
    reference: str | None = text(128, default=None)
    description: str | None = text(4000, default=None)


class CreateTickets(Body):
    tickets: list[CreateTicket] = Field(min_length=1, max_length=MAX_BULK_CREATE)


class UpdateTicket(Body):
    status: Status | None = None
    agent_id: str | None = text(64, default=None)
    priority: Priority | None = None


class BulkUpdate(UpdateTicket):
    ticket_ids: list[Id] = Field(min_length=1, max_length=model.MAX_BATCH)


def batcher(request: Request, ws: WorkspaceDep) -> CreateBatcher:
    """The app's group-commit thread for single creates, started on first use."""
    if getattr(request.app.state, "ticket_batcher", None) is None:
        request.app.state.ticket_batcher = CreateBatcher(ws)
    return request.app.state.ticket_batcher


@router.post("/tickets", status_code=201, summary="Create a ticket (assigned)", responses=WRITE_ERRORS)
async def create_ticket(
    body: CreateTicket, who: Writer, creates: Annotated[CreateBatcher, Depends(batcher)]
) -> dict[str, Any]:
    """Created with the other creates waiting at the same moment, in arrival order (see `batching`)."""
    return camel(await asyncio.wrap_future(creates.submit(who.sub, service.NewTicket(**body.model_dump()))))


@router.post("/tickets/bulk", status_code=201, summary="Create up to 1000 tickets", responses=WRITE_ERRORS)
def create_tickets(body: CreateTickets, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    batch = [service.NewTicket(**t.model_dump()) for t in body.tickets]
    return {"tickets": camel(service.create_tickets(ws, who.sub, batch))}


@router.get("/tickets", summary="Tickets, newest first", responses=READ_ERRORS)
def list_tickets(
    ws: WorkspaceDep,
    _: Reader,
    agent_id: Annotated[str | None, Query(alias="agentId", min_length=1, max_length=64)] = None,
    group_id: Annotated[int | None, Query(alias="groupId", ge=1, le=MAX_ID)] = None,
    status: Status | None = None,
    priority: Annotated[int | None, Query(ge=model.PRIORITY_MIN, le=model.PRIORITY_MAX)] = None,
    source: Source | None = None,
    reference: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    created_from: Annotated[Timestamp | None, Query(alias="createdFrom")] = None,
    created_to: Annotated[Timestamp | None, Query(alias="createdTo")] = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=model.MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """Filter by agent, group, status, priority, source, reference and creation time; page with `cursor`."""
    filters = service.Filters(agent_id, group_id, status, priority, source, reference, created_from,
                              created_to)
    page = service.list_tickets(ws, filters, after_id=cursor, limit=limit)
    return {"tickets": camel(page.tickets),
            "nextCursor": str(page.next_after_id) if page.next_after_id else None}


@router.post("/tickets/bulk-update", summary="Reassign, resolve or reprioritize many tickets",
             responses=WRITE_ERRORS)
def bulk_update(body: BulkUpdate, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True, exclude={"ticket_ids"})
    return {"tickets": camel(service.update_tickets(ws, who.sub, body.ticket_ids, changes))}


@router.get("/tickets/{ticket_id:int}", summary="One ticket", responses=READ_ERRORS)
def get_ticket(ticket_id: IdPath, ws: WorkspaceDep, _: Reader) -> dict[str, Any]:
    return camel(service.get_ticket(ws, ticket_id))


@router.patch("/tickets/{ticket_id:int}", summary="Resolve, reopen, reassign or reprioritize",
              responses=WRITE_ERRORS)
def update_ticket(ticket_id: IdPath, body: UpdateTicket, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return camel(service.update_tickets(ws, who.sub, [ticket_id], changes)[0])


@router.delete("/tickets/{ticket_id:int}", summary="Delete a ticket", responses=WRITE_ERRORS)
def delete_ticket(ticket_id: IdPath, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    return camel(service.delete_ticket(ws, who.sub, ticket_id))


@router.get("/audit", summary="The audit trail of one entity, oldest first", responses=READ_ERRORS)
def audit_trail(
    ws: WorkspaceDep,
    _: Reader,
    entity_type: Annotated[str, Query(alias="entityType", min_length=1, max_length=32,
                                      description="ticket, agent, group, ...")],
    entity_id: Annotated[str, Query(alias="entityId", min_length=1, max_length=128)],
) -> dict[str, Any]:
    with ws.read_engine.connect() as conn:
        entries = audit.history(conn, entity_type, entity_id)
    return {"entries": camel([{**e, "at": model.iso(e["at"])} for e in entries])}
