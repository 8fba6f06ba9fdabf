"""Reconciliation: the open breaks of the latest runs (filters by status, recon, date and age, paged), and a
form per break to match, unmatch or write it off with a note.

Read by ops, finance and analysts (as `GET /api/recon/breaks`); resolving is ops only and goes through
`breaks.resolve`, audited with the console user (the break's ticket resolved, the next run applies it).
"""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ops_pipeline.console.sessions import Session
from ops_pipeline.console.web import Acting, done, page_router, readers, render, run_domain, url
from ops_pipeline.recon import breaks
from ops_pipeline.recon.registry import RECONS

router = page_router()
Reader = Annotated[Session, Depends(readers("reconciliation", "ops", "finance", "analyst"))]
PAGE = 50
ACTIONS = ("write-off", "match", "unmatch")


@router.get("/recon")
async def breaks_page(
    request: Request,
    session: Reader,
    status: Annotated[str | None, Query(max_length=40)] = None,
    recon: Annotated[str | None, Query(max_length=40)] = None,
    day: Annotated[date | None, Query(alias="date")] = None,
    older_than: Annotated[int | None, Query(ge=0, le=100_000)] = None,
    after: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    status, recon = status or None, recon or None  # the filter form sends "" for "any"
    chosen = {"status": status, "recon": recon, "date": day, "older_than": older_than}
    listed = partial(breaks.open_breaks, request.app.state.ws, status=status, recon=recon, business_date=day,
                     older_than_days=older_than, after=after and breaks.parse_cursor(after), limit=PAGE + 1)
    found = await run_domain(request, listed)
    last = found[PAGE - 1] if len(found) > PAGE else None
    next_url = last and url("/recon", **chosen, after=breaks.cursor(last))
    return render(request, "recon/breaks.html", found=found[:PAGE], statuses=breaks.BREAK_STATUSES,
                  recons=sorted(RECONS), actions=ACTIONS, chosen=chosen, next_url=next_url)


@router.post("/recon/breaks/{break_id}/resolve")
async def resolve(request: Request, form: Acting,
                  break_id: Annotated[str, Path(min_length=1, max_length=64)]) -> RedirectResponse:
    other = form.get("with") or None
    decision = await run_domain(request, breaks.resolve, request.app.state.ws, break_id, form.get("action"),
                                form.get("note"), form.actor, other)
    return await done(request, f"Break {break_id}: {form.get('action')} recorded (decision {decision}); "
                      "the next run of its date applies it.", "/recon")
