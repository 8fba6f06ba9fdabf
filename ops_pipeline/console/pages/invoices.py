"""Gift-card invoices: the list (newest month first, filtered by month) and one invoice with its lines,
payments status and files (opened or downloaded with the signed-in session). Read by finance, ops and
analysts."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from ops_pipeline.api.giftcards_finance import MEDIA
from ops_pipeline.console.sessions import Session
from ops_pipeline.console.web import page_router, readers, render, run_domain
from ops_pipeline.errors import NotFound
from ops_pipeline.giftcards import invoice_files, invoices

router = page_router()
Reader = Annotated[Session, Depends(readers("the invoices", "finance", "ops", "analyst"))]


@router.get("/invoices")
async def invoices_page(
    request: Request,
    session: Reader,
    month: Annotated[str | None, Query(pattern=r"^[0-9]{4}-[0-9]{2}$")] = None,
) -> HTMLResponse:
    ws = request.app.state.ws
    first = invoices.parse_month(month) if month else None
    found = await run_domain(request, lambda: invoices.list_invoices(ws, month=first, limit=500))
    return render(request, "invoices/list.html", invoices=[invoices.view(i) for i in found], month=month)


@router.get("/invoices/{number}")
async def invoice_page(request: Request, session: Reader, number: str) -> HTMLResponse:
    ws = request.app.state.ws
    found = await run_domain(request, invoices.get, ws, number)
    files = [kind for kind, path in invoice_files.paths(ws, found).items() if path.exists()]
    return render(request, "invoices/one.html", i=invoices.view(found), files=files)


@router.get("/invoices/{number}/files/{kind}")
async def invoice_file_page(request: Request, session: Reader, number: str, kind: str) -> FileResponse:
    ws = request.app.state.ws
    found = await run_domain(request, invoices.get, ws, number)
    path = invoice_files.paths(ws, found).get(kind)
    if path is None or not path.exists():
        raise NotFound(f"kind: no {kind} file of {number}")
    return FileResponse(
        path,
        media_type=MEDIA[kind],
        filename=path.name,
        content_disposition_type="attachment" if kind == "xlsx" else "inline",
    )
