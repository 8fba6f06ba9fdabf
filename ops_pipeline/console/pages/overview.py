"""The overview: the job queue by state and type, jobs finished per hour, open tickets, the latest fund-out
batches, the open quarantine and the ledger's replay check, with links to each area and to Dagster."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ops_pipeline.console.overview import overview
from ops_pipeline.console.web import Viewer, page_router, render, run_domain, url

router = page_router()


@router.get("", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse(url("/"), status_code=307)


@router.get("/")
async def overview_page(request: Request, session: Viewer) -> HTMLResponse:
    data = await run_domain(request, overview, request.app.state.ws)
    peak = max((c + f for _, c, f in data.per_hour), default=0)
    return render(request, "overview.html", data=data, peak=peak)
