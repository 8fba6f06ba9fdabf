"""Gift cards: principals (a mall with its tenants), programs (bank restriction state, commission rules,
materials), distributors and customers (wallet balance from the ledger, assignments), vouchers (filtered,
paged by id; one voucher with its events), and each record's audit trail (sensitive values masked).

Read by ops, finance and analysts (as `GET /api/giftcards/...`); assigning a program to a party and
unassigning it are ops only and go through `giftcards.assignments`, audited with the console user.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ops_pipeline.api.models import MAX_ID
from ops_pipeline.console.sessions import Session
from ops_pipeline.console.web import Acting, Posted, done, page_router, readers, render, run_domain, url
from ops_pipeline.errors import InvalidInput
from ops_pipeline.giftcards import assignments, events, kinds, records, vouchers
from ops_pipeline.giftcards.assignments import ASSIGNMENTS
from ops_pipeline.giftcards.model import VOUCHER_STATUSES
from ops_pipeline.giftcards.vouchers import ENTITY as VOUCHER_ENTITY
from ops_pipeline.workspace import Workspace

router = page_router()
Reader = Annotated[Session, Depends(readers("gift-card records", "ops", "finance", "analyst"))]
PAGE = 50
Key = Annotated[str, Path(min_length=1, max_length=64)]
Filter = Annotated[str | None, Query(max_length=64)]
AssignmentId = Annotated[int, Path(ge=1, le=MAX_ID)]
# The record kinds with a list page, by the page's path (and template) name
KINDS = {"principals": kinds.PRINCIPALS, "programs": kinds.PROGRAMS, "parties": kinds.PARTIES}
ASSIGN_FIELDS = ("program_id", "starts_on", "ends_on", "commission_percent", "discount_percent",
                 "agreement_reference", "agreement_terms")


def _ws(request: Request) -> Workspace:
    return request.app.state.ws


async def _list(request: Request, plural: str, after: str | None, kind: str | None) -> HTMLResponse:
    found, next_after = await run_domain(request, partial(records.page, _ws(request), KINDS[plural],
                                                          after=after or None, limit=PAGE,
                                                          where={"kind": kind or None}))
    next_url = next_after and url(f"/giftcards/{plural}", kind=kind, after=next_after)
    return render(request, f"giftcards/{plural}.html", found=found, next_url=next_url, chosen={"kind": kind})


@router.get("/giftcards")
async def home(request: Request, session: Reader) -> RedirectResponse:
    return RedirectResponse(url("/giftcards/principals"), status_code=303)


@router.get("/giftcards/principals")
async def principals_page(request: Request, session: Reader, kind: Filter = None, after: Filter = None
                          ) -> HTMLResponse:
    return await _list(request, "principals", after, kind)


@router.get("/giftcards/programs")
async def programs_page(request: Request, session: Reader, after: Filter = None) -> HTMLResponse:
    return await _list(request, "programs", after, None)


@router.get("/giftcards/parties")
async def parties_page(request: Request, session: Reader, kind: Filter = None, after: Filter = None
                       ) -> HTMLResponse:
    return await _list(request, "parties", after, kind)


def _principal(ws: Workspace, key: str) -> dict[str, Any]:
    principal = records.get(ws, kinds.PRINCIPALS, key)
    tenants = records.page(ws, kinds.PRINCIPALS, limit=records.MAX_PAGE, where={"mall_id": key})[0] \
        if principal["kind"] == "mall" else []
    return {"principal": principal, "tenants": tenants,
            "trail": records.trail(ws, kinds.PRINCIPALS.entity_type, key)}


def _program(ws: Workspace, key: str) -> dict[str, Any]:
    return {"program": records.get(ws, kinds.PROGRAMS, key),
            "assigned": assignments.list_assignments(ws, program_id=key, limit=records.MAX_PAGE)[0],
            "trail": records.trail(ws, kinds.PROGRAMS.entity_type, key)}


def _party(ws: Workspace, key: str, can_act: bool) -> dict[str, Any]:
    """The party with its wallet balance, its assignments, its trail and its assignments' (by time), and
    for ops the active programs it may be assigned."""
    party = kinds.party_with_wallet(ws, key)
    assigned = assignments.list_assignments(ws, party_id=key, limit=records.MAX_PAGE)[0]
    trail = records.trail(ws, kinds.PARTIES.entity_type, key)
    for a in assigned:
        own = records.trail(ws, ASSIGNMENTS.entity_type, str(a["id"]))
        trail += [{**e, "assignment": a["id"]} for e in own]
    programs = records.page(ws, kinds.PROGRAMS, limit=records.MAX_PAGE, where={"status": "active"})[0] \
        if can_act else []
    return {"party": party, "assigned": assigned, "trail": sorted(trail, key=lambda e: e["id"]),
            "programs": programs, "today": datetime.now(ws.settings.tz).date().isoformat()}


def _voucher(ws: Workspace, key: str) -> dict[str, Any]:
    return {"voucher": vouchers.get(ws, key), "events": events.of_voucher(ws, key),
            "trail": records.trail(ws, VOUCHER_ENTITY, key)}


@router.get("/giftcards/principals/{key}")
async def principal_page(request: Request, session: Reader, key: Key) -> HTMLResponse:
    found = await run_domain(request, _principal, _ws(request), key)
    return render(request, "giftcards/principal.html", **found)


@router.get("/giftcards/programs/{key}")
async def program_page(request: Request, session: Reader, key: Key) -> HTMLResponse:
    found = await run_domain(request, _program, _ws(request), key)
    return render(request, "giftcards/program.html", **found)


@router.get("/giftcards/parties/{key}")
async def party_page(request: Request, session: Reader, key: Key) -> HTMLResponse:
    found = await run_domain(request, _party, _ws(request), key, session.can_act)
    return render(request, "giftcards/party.html", **found)


def _assignment(form: Posted, party_id: str) -> dict[str, Any]:
    """The assign form's fields the person filled in, for `assignments.assign` to validate whole."""
    data: dict[str, Any] = {name: form.get(name) for name in ASSIGN_FIELDS if form.get(name)}
    return {**data, "party_id": party_id}


@router.post("/giftcards/parties/{key}/assign")
async def assign(request: Request, form: Acting, key: Key) -> RedirectResponse:
    made = await run_domain(request, assignments.assign, _ws(request), _assignment(form, key), form.actor)
    return await done(request, f"Assignment {made['id']}: {key} sells {made['program_id']} from "
                      f"{made['starts_on']}.", f"/giftcards/parties/{key}")


@router.post("/giftcards/assignments/{assignment_id}/unassign")
async def unassign(request: Request, form: Acting, assignment_id: AssignmentId) -> RedirectResponse:
    ends_on = form.get("ends_on")
    try:
        last_day = date.fromisoformat(ends_on) if ends_on else None
    except ValueError:
        raise InvalidInput(f"ends_on: {ends_on[:40]!r} is not a date (YYYY-MM-DD)") from None
    ended = await run_domain(request, assignments.unassign, _ws(request), assignment_id, form.actor, last_day,
                             form.get("reason") or None)
    return await done(request, f"Assignment {assignment_id} ({ended['program_id']}) ends on "
                      f"{ended['ends_on']}.", f"/giftcards/parties/{ended['party_id']}")


@router.get("/giftcards/vouchers")
async def vouchers_page(request: Request, session: Reader, program_id: Filter = None,
                        holder_id: Filter = None, status: Filter = None, after: Filter = None
                        ) -> HTMLResponse:
    chosen = {"program_id": program_id or None, "holder_id": holder_id or None, "status": status or None}
    found, next_after = await run_domain(request, partial(vouchers.list_vouchers, _ws(request), **chosen,
                                                          after=after or None, limit=PAGE))
    next_url = next_after and url("/giftcards/vouchers", **chosen, after=next_after)
    return render(request, "giftcards/vouchers.html", found=found, next_url=next_url, chosen=chosen,
                  statuses=VOUCHER_STATUSES)


@router.get("/giftcards/vouchers/{key}")
async def voucher_page(request: Request, session: Reader, key: Key) -> HTMLResponse:
    found = await run_domain(request, _voucher, _ws(request), key)
    return render(request, "giftcards/voucher.html", **found)
