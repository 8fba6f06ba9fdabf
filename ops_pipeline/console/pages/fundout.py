"""Fund-out: batches by slot (counts, exact amounts per currency, failure rate, missed slots), a batch's
payouts (failed ones only on demand), and a business's configuration and payouts.

Read by ops and finance, as the REST API's batch, configuration and payout reads admit; analysts are
refused (403). Nothing here changes anything.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ops_pipeline.console.sessions import Session
from ops_pipeline.console.web import page_router, readers, render, run_domain, url
from ops_pipeline.fundout import batch, config, queries

router = page_router()
Reader = Annotated[Session, Depends(readers("fund-out", "ops", "finance"))]
BusinessId = Annotated[str, Path(min_length=1, max_length=config.MAX_BUSINESS_ID)]
After = Annotated[str | None, Query(min_length=1, max_length=queries.MAX_CURSOR)]



@router.get("/fundout")
async def batches_page(
    request: Request,
    session: Reader,
    status: Literal[batch.STATUSES] | None = None,  # type: ignore[valid-type]
    after: Annotated[int | None, Query(ge=1, le=batch.MAX_ID)] = None,
) -> HTMLResponse:
    listed = partial(batch.list_batches, request.app.state.ws, status=status, after=after)
    page = await run_domain(request, listed)
    return render(request, "fundout/batches.html", page=page, chosen=status, statuses=batch.STATUSES,
                  next_url=page.next_cursor and url("/fundout", status=status, after=page.next_cursor))


@router.get("/fundout/batches/{batch_id:int}")
async def batch_page(
    request: Request,
    session: Reader,
    batch_id: Annotated[int, Path(ge=1, le=batch.MAX_ID)],
    failed: bool = False,
    after: After = None,
) -> HTMLResponse:
    ws = request.app.state.ws
    report = await run_domain(request, batch.get_batch, ws, batch_id)
    page = await run_domain(request, queries.batch_payouts, ws, batch_id, failed, after)
    return render(request, "fundout/batch.html", batch=report, page=page, failed=failed,
                  next_url=page.next_after and url(f"/fundout/batches/{batch_id}", failed=failed or None,
                                                   after=page.next_after))


@router.get("/fundout/businesses")
async def find_business(
    session: Reader, id: Annotated[str, Query(min_length=1, max_length=config.MAX_BUSINESS_ID)]
) -> RedirectResponse:
    """The search box: to the business's page."""
    return RedirectResponse(url(f"/fundout/businesses/{_quoted(id.strip())}"), status_code=303)


def _quoted(business_id: str) -> str:
    return quote(business_id, safe="")


@router.get("/fundout/businesses/{business_id}")
async def business_page(request: Request, session: Reader, business_id: BusinessId, after: After = None
                        ) -> HTMLResponse:
    data = await run_domain(request, queries.business, request.app.state.ws, business_id, after)
    return render(request, "fundout/business.html", data=data,
                  next_url=data.payouts.next_after and url(f"/fundout/businesses/{_quoted(business_id)}",
                                                           after=data.payouts.next_after))
