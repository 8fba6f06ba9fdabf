"""Mounts the console on the API app: its pages under `/console` and its JavaScript and CSS (from the package)
under `/console/static`."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from ops_pipeline.console.pages import (
    alerts,
    disbursements,
    fundout,
    giftcards,
    invoices,
    jobs,
    ledger,
    obligations,
    overview,
    recon,
    reports,
    signin,
    tickets,
)
from ops_pipeline.console.web import HERE, PREFIX, Viewer, page_router
from ops_pipeline.errors import NotFound

PAGES = (signin.router, overview.router, jobs.router, tickets.router, fundout.router, disbursements.router,
         ledger.router, recon.router, reports.router, alerts.router,
         giftcards.router, invoices.router, obligations.router)


def install(app: FastAPI) -> None:
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for router in PAGES:
        app.include_router(router, prefix=PREFIX)
    app.include_router(missing, prefix=PREFIX)  # last: any other console path is a 404 page


missing = page_router()


@missing.get("/{path:path}")
async def not_found(request: Request, path: str, session: Viewer) -> Response:
    raise NotFound(f"page: {request.url.path!r} is not a console page")
