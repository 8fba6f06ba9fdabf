"""Tickets: the viewer's own open tickets, a group's queue and its agents' load today, marking an agent away
or available (the page says where its tickets went), and a ticket with its history, resolved or reassigned.

Read by ops and analysts (as `GET /api/tickets` and `/api/agents`); finance is refused (403). Actions are
ops only and go through the domain's `update_agent` and `update_tickets`, audited with the console user.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ops_pipeline import audit
from ops_pipeline.api.models import MAX_ID
from ops_pipeline.console.sessions import Session
from ops_pipeline.console.web import (
    Acting,
    done,
    page_router,
    readers,
    render,
    run_domain,
    url,
)
from ops_pipeline.tickets import agents, queries
from ops_pipeline.tickets.tickets import get_ticket, update_tickets
from ops_pipeline.workspace import Workspace

router = page_router()
Reader = Annotated[Session, Depends(readers("tickets", "ops", "analyst"))]
SHOWN_MOVES = 12  # moves named in the message; the rest counted
TicketId = Annotated[int, Path(ge=1, le=MAX_ID)]
AgentId = Annotated[str, Path(min_length=1, max_length=64)]



@router.get("/tickets")
async def tickets_page(
    request: Request,
    session: Reader,
    group: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    after: Annotated[str | None, Query(max_length=24)] = None,
    mine: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> HTMLResponse:
    data = await run_domain(request, queries.home, request.app.state.ws, session.sub, group, after, mine)
    group_id = data.group and data.group["group_id"]
    queue_next = data.queue and data.queue.next_after
    mine_next = data.mine and data.mine.next_after_id
    agent_ids = [t["agent_id"] for t in data.queue.tickets] if data.queue else []
    who = await run_domain(request, queries.names, request.app.state.ws, agent_ids)
    return render(
        request, "tickets/index.html", data=data, who=who,
        queue_next=queue_next and url("/tickets", group=group_id, after=queue_next, mine=mine),
        mine_next=mine_next and url("/tickets", group=group_id, after=after, mine=mine_next),
    )


@router.get("/tickets/{ticket_id:int}")
async def ticket_page(request: Request, session: Reader, ticket_id: TicketId) -> HTMLResponse:
    ws = request.app.state.ws
    ticket = await run_domain(request, get_ticket, ws, ticket_id)
    history = await run_domain(request, queries.assignment_history, ws, ticket_id)
    trail = await run_domain(request, _trail, ws, ticket_id)
    members = await run_domain(request, agents.list_agents, ws, ticket["group_id"], True)
    names = await run_domain(request, queries.names, ws, [ticket["agent_id"]])
    return render(request, "tickets/ticket.html", ticket=ticket, history=history, trail=trail,
                  members=[a for a in members if a["agent_id"] != ticket["agent_id"]],
                  agent_name=names.get(ticket["agent_id"]))


def _trail(ws: Workspace, ticket_id: int) -> list[dict]:
    with ws.read_engine.connect() as conn:
        return audit.history(conn, "ticket", str(ticket_id))


@router.post("/tickets/{ticket_id:int}/resolve")
async def resolve(request: Request, form: Acting, ticket_id: TicketId) -> RedirectResponse:
    await run_domain(request, update_tickets, request.app.state.ws, form.actor, [ticket_id],
                     {"status": "resolved"})
    return await done(request, f"Ticket #{ticket_id} resolved.", f"/tickets/{ticket_id}")


@router.post("/tickets/{ticket_id:int}/reassign")
async def reassign(request: Request, form: Acting, ticket_id: TicketId) -> RedirectResponse:
    ws = request.app.state.ws
    [ticket] = await run_domain(request, update_tickets, ws, form.actor, [ticket_id],
                                {"agent_id": form.get("agent_id")})
    names = await run_domain(request, queries.names, ws, [ticket["agent_id"]])
    to = names.get(ticket["agent_id"], ticket["agent_id"])
    return await done(request, f"Ticket #{ticket_id} reassigned to {to}.", f"/tickets/{ticket_id}")


@router.post("/tickets/agents/{agent_id}/away")
async def mark_away(request: Request, form: Acting, agent_id: AgentId) -> RedirectResponse:
    """Unavailable: the domain gives the agent's open tickets to the other available agents of each
    ticket's group (or leaves them waiting); the message names where each went, from the history rows
    this change wrote."""
    ws = request.app.state.ws
    before = await run_domain(request, queries.open_ticket_ids, ws, agent_id)
    agent = await run_domain(request, agents.update_agent, ws, form.actor, agent_id, {"active_status": False})
    at = datetime.fromisoformat(agent["updated_at"])
    moves = await run_domain(request, queries.moved, ws, before, form.actor, at)
    names = await run_domain(request, queries.names, ws, [a for _, a in moves if a])
    shown = ", ".join(f"#{t} → {names.get(a, a)}" if a else f"#{t} waiting (no available agent)"
                      for t, a in moves[:SHOWN_MOVES])
    more = f" and {len(moves) - SHOWN_MOVES} more" if len(moves) > SHOWN_MOVES else ""
    moved = f"{len(moves)} ticket{'s' if len(moves) != 1 else ''} moved"
    moved += f": {shown}{more}" if moves else ""
    return await done(request, f"{agent['name']} is away. {moved}.", _back(form.get("group")))


@router.post("/tickets/agents/{agent_id}/available")
async def mark_available(request: Request, form: Acting, agent_id: AgentId) -> RedirectResponse:
    """Available again: the domain gives the agent the tickets waiting in its groups."""
    ws = request.app.state.ws
    before = await run_domain(request, agents.get_agent, ws, agent_id)
    agent = await run_domain(request, agents.update_agent, ws, form.actor, agent_id, {"active_status": True})
    took = agent["total_tickets_assigned"] - before["total_tickets_assigned"]
    return await done(request, f"{agent['name']} is available and took {took} waiting tickets.",
                      _back(form.get("group")))


def _back(group: str) -> str:
    """The tickets page of the group the form came from (a group id, else the default group)."""
    ok = group.isascii() and group.isdigit() and len(group) < 19
    return f"/tickets?group={group}" if ok else "/tickets"
