"""Payout requests over REST: `POST /api/payouts` (internal services) and `GET /api/payouts/{payoutId}`.

The domain (`fundout.requests`) pays along cash-out's path; this module owns the wire format (camelCase,
amounts as exact decimal text) and shares the payout's JSON shape with the fund-out routes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ops_pipeline.api.auth import require_roles
from ops_pipeline.api.deps import WorkspaceDep, run_domain
from ops_pipeline.api.fundout import PayoutView, answer, documented, json_body, payout_json
from ops_pipeline.auth import Principal
from ops_pipeline.errors import InvalidInput
from ops_pipeline.fundout import cashout, config, requests

router = APIRouter(tags=["payouts"])
Internal = Annotated[Principal, Depends(require_roles("internal"))]
Reader = Annotated[Principal, Depends(require_roles("internal", "ops", "finance"))]
FIELDS = ("businessId", "currency", "amount", "reason")


class PayoutRequestBody(BaseModel):
    """A payout request. `float` only documents "type": "number": bodies are read with exact decimals."""

    model_config = ConfigDict(extra="forbid")

    businessId: Annotated[str, Field(min_length=1, max_length=config.MAX_BUSINESS_ID)] = Field(
        description="The merchant (the ledger's merchant_id)."
    )
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = Field(description="ISO 4217.")
    amount: (
        Annotated[str, Field(max_length=cashout.MAX_AMOUNT_TEXT, pattern=r"^([0-9]+(\.[0-9]+)?|all)$")]
        | Annotated[float, Field(gt=0)]
    ) = Field(description="Major units, exact ('125.50' or 125.50), or 'all': everything available above "
                          "the merchant's fund-out minimumBalance (all available without a configuration).")
    reason: Annotated[str, Field(min_length=1, max_length=requests.MAX_REASON)] | None = Field(
        None, description="Why: kept in the audit record."
    )


@router.post(
    "/api/payouts",
    status_code=201,
    summary="Pay a merchant now (201; 200 with the first payout for a repeated Idempotency-Key)",
    openapi_extra=documented(PayoutRequestBody),
    responses={**answer(PayoutView, 201, 400, 401, 403, 404, 409, 413, 415),
               200: {"model": PayoutView, "description": "The payout first made under this key"}},
)
async def create_payout(
    request: Request,
    ws: WorkspaceDep,
    who: Internal,
    idempotency_key: Annotated[str | None, Header(max_length=requests.MAX_KEY)] = None,
) -> JSONResponse:
    """Holds the amount, pays it at the bank and posts it; `status` is `posted` or `failed` (`unknown` while
    the bank's answer is awaited). 409 names the available amount when it is not there, or the fields that
    differ when the Idempotency-Key was used with another body."""
    body = await json_body(request)
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"{unknown[0][:40]}: is not a field; allowed: {', '.join(FIELDS)}")
    missing = [f for f in ("businessId", "currency", "amount") if f not in body]
    if missing:
        raise InvalidInput(f"{missing[0]}: is required")
    # On a thread even on SQLite: the bank's answer can take seconds.
    payout, created = await run_in_threadpool(
        requests.request_payout, ws, body["businessId"], body["currency"], body["amount"], who.actor,
        idempotency_key, body.get("reason"),
    )
    return JSONResponse(payout_json(payout), status_code=201 if created else 200)


@router.get(
    "/api/payouts/{payoutId}",
    summary="A payout and its status (held, sending, unknown, paid, posted, failed, returned)",
    responses=answer(PayoutView, 200, 401, 403, 404),
)
async def get_payout(
    request: Request,
    ws: WorkspaceDep,
    who: Reader,
    payoutId: Annotated[str, Path(min_length=1, max_length=40)],
) -> dict:
    return payout_json(await run_domain(request, cashout.get_payout, ws, payoutId))
