"""Finance reports: the built ones (as `GET /api/reports` lists them), each file opened or downloaded from the
console with the signed-in session. Read by finance and ops; other roles get a 403 page."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import FileResponse, HTMLResponse

from ops_pipeline.api.reports import file_response
from ops_pipeline.console.sessions import Session
from ops_pipeline.console.web import page_router, readers, render, run_domain
from ops_pipeline.reports.build import list_reports, report_file

router = page_router()
Reader = Annotated[Session, Depends(readers("the finance reports", "finance", "ops"))]


@router.get("/reports")
async def reports_page(request: Request, session: Reader) -> HTMLResponse:
    found = await run_domain(request, list_reports, request.app.state.ws)
    return render(request, "reports/list.html", reports=found)


@router.get("/reports/{kind}/{period}.{format}")
async def report_file_page(request: Request, session: Reader, kind: str, period: str,
                           format: str) -> FileResponse:
    return file_response(await run_domain(request, report_file, request.app.state.ws, kind, period, format))
