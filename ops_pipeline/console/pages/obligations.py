"""What the business owes gift-card principals: the obligations (filtered by principal and status, paged by
id) with their transfer and statement entry, and, for ops, "confirm" on a sent one (`obligations.confirm`:
paid only when the bank completed the transfer and a loaded statement shows the debit). Read by ops,
finance and analysts (as `GET /api/giftcards/obligations`)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ops_pipeline.console.sessions import Session
from ops_pipeline.console.web import Acting, done, page_router, readers, render, run_domain, url
from ops_pipeline.giftcards import obligations

router = page_router()
Reader = Annotated[Session, Depends(readers("the obligations to principals", "ops", "finance", "analyst"))]
Filter = Annotated[str | None, Query(max_length=64)]
PAGE = 50


@router.get("/obligations")
async def obligations_page(request: Request, session: Reader, principal_id: Filter = None,
                           status: Filter = None, after: Filter = None) -> HTMLResponse:
    chosen = {"principal_id": principal_id or None, "status": status or None}
    found, next_after = await run_domain(request, partial(
        obligations.list_obligations, request.app.state.ws, **chosen, after=after or None, limit=PAGE))
    next_url = next_after and url("/obligations", **chosen, after=next_after)
    return render(request, "obligations/list.html", found=found, chosen=chosen, next_url=next_url,
                  statuses=obligations.STATUSES, sent=obligations.SENT)


@router.post("/obligations/{key}/confirm")
async def confirm(request: Request, form: Acting, key: Annotated[str, Path(max_length=64)]
                  ) -> RedirectResponse:
    ws = request.app.state.ws
    current = await run_domain(request, obligations.get, ws, key)
    found = await run_domain(request, obligations.confirm, ws, form.actor, [key])
    message = (f"Obligation {key}: {found[0].outcome} ({found[0].detail})." if found
               else f"Obligation {key} is {current['status']}: only a sent one is confirmed.")
    return await done(request, message, f"/obligations?principal_id={current['principal_id']}")
