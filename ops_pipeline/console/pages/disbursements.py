"""G2P disbursements: envelopes (newest first, by program) with their counters and step states, and one
envelope's batches with their step states and disbursements per status.

Read by ops and finance; nothing here changes anything (the pipeline's steps run in Dagster or the CLI).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.responses import HTMLResponse

from ops_pipeline.console.sessions import Session
from ops_pipeline.console.web import page_router, readers, render, run_domain
from ops_pipeline.disbursements import overview

router = page_router()
Reader = Annotated[Session, Depends(readers("disbursements", "ops", "finance"))]
PAGE = 100


@router.get("/disbursements")
async def envelopes_page(request: Request, session: Reader,
                         program: Annotated[str | None, Query(max_length=64)] = None) -> HTMLResponse:
    found = await run_domain(request, overview.list_envelopes, request.app.state.ws, program or None, PAGE)
    return render(request, "disbursements/envelopes.html", envelopes=found, program=program or "")


@router.get("/disbursements/envelopes/{envelope_id}")
async def envelope_page(request: Request, session: Reader,
                        envelope_id: Annotated[str, Path(min_length=1, max_length=64)]) -> HTMLResponse:
    view = await run_domain(request, overview.envelope_view, request.app.state.ws, envelope_id)
    return render(request, "disbursements/envelope.html", view=view, env=view.status.envelope)
