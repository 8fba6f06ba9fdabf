"""The ledger: a merchant's exact balances (as `GET /api/balances/{merchant}` computes them), holds and latest
log entries; the quarantine by reason, with "Reprocess" (as `ops-pipeline ledger reprocess`).

Readable by ops and finance, the roles `GET /api/balances/{merchant}` admits; analysts get a 403 page.
Reprocessing is for ops.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ops_pipeline.console.ledger import merchant_ledger
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
from ops_pipeline.errors import InvalidInput
from ops_pipeline.ledger import ingest, queries
from ops_pipeline.ledger.validation import PRIORITY

router = page_router()
Merchant = Annotated[str, Path(min_length=1, max_length=64)]


Reader = Annotated[Session, Depends(readers("the ledger", "ops", "finance"))]


@router.get("/ledger")
async def search(request: Request, session: Reader,
                 merchant: Annotated[str, Query(max_length=64)] = "") -> Response:
    if merchant.strip():
        return RedirectResponse(url(f"/ledger/merchants/{quote(merchant.strip(), safe='')}"), status_code=303)
    return render(request, "ledger/search.html")


@router.get("/ledger/merchants/{merchant_id}")
async def merchant_page(request: Request, session: Reader, merchant_id: Merchant) -> HTMLResponse:
    data = await run_domain(request, merchant_ledger, request.app.state.ws, merchant_id)
    return render(request, "ledger/merchant.html", merchant_id=merchant_id, data=data)


@router.get("/ledger/quarantine")
async def quarantine_page(
    request: Request, session: Reader,
    reason: Annotated[str, Query(max_length=64)] = "",
    status: Annotated[str, Query(max_length=16)] = "open",
    after: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    ws = request.app.state.ws
    counts = await run_domain(request, queries.open_quarantine_by_reason, ws)
    if reason and reason not in PRIORITY and reason not in counts:
        raise InvalidInput(f"reason: {reason!r} is not a quarantine reason code")
    page = await run_domain(request, queries.quarantine_rows, ws, reason or None, status, after or None)
    more = page.next_after
    next_url = url("/ledger/quarantine", reason=reason, status=status, after=more) if more else None
    return render(request, "ledger/quarantine.html", page=page, counts=counts, reason=reason, chosen=status,
                  statuses=queries.QUARANTINE_STATUSES, reasons=PRIORITY, next_url=next_url)


@router.post("/ledger/quarantine/reprocess")
async def reprocess(request: Request, form: Acting) -> RedirectResponse:
    results = await run_domain(request, partial(ingest.reprocess, actor=form.actor), request.app.state.ws)
    rows = sum(r.rows for r in results)
    resolved = sum(r.resolved for r in results)
    still = sum(r.quarantined for r in results)
    message = (f"Reprocessed {rows} quarantined rows from {len(results)} files: {resolved} resolved, "
               f"{still} still quarantined.")
    return await done(request, message, "/ledger/quarantine")
