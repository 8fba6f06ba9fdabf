"""`GET /api/balances/{merchant_id}`: exact balances at the moment of the call (cache + newer log entries)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field

from ops_pipeline.api.auth import require_roles
from ops_pipeline.api.deps import WorkspaceDep
from ops_pipeline.api.errors import error_responses
from ops_pipeline.api.models import CamelModel
from ops_pipeline.ledger.balances import get_balances_native
from ops_pipeline.money import exponent

router = APIRouter(tags=["ledger"])
# The pattern is documented; the ledger checks the code itself and names it when unknown.
CURRENCY = Query(description="Only this ISO 4217 currency.", json_schema_extra={"pattern": "^[A-Z]{3}$"})

Money = Annotated[str, Field(description="Exact decimal in major units, e.g. '86.30' (EUR), '1200' (JPY).")]


class CurrencyBalance(CamelModel):
    currency: str = Field(description="ISO 4217 code.")
    confirmed_balance: Money
    settled_balance: Money
    held: Money
    available: Money = Field(description="settled - held: the part that can be paid out.")
    reserved: Money = Field(description="In the merchant's reserve until released or expired (reconciled "
                                        "reserves): already out of settled, so not in available.")
    as_of: datetime


class MerchantBalances(CamelModel):
    merchant_id: str
    balances: list[CurrencyBalance]
    lake_version: int = Field(description="Version of the balance-operations log the figures include.")


@router.get(
    "/api/balances/{merchant_id}",
    summary="Balances of one merchant",
    dependencies=[Depends(require_roles("ops", "finance", "internal", merchant_self="merchant_id"))],
    response_model=MerchantBalances,
    responses=error_responses(400, 401, 403, 404),
)
async def merchant_balances(
    request: Request,
    ws: WorkspaceDep,
    merchant_id: Annotated[str, Path(min_length=1, max_length=64, description="Global merchant id.")],
    currency: Annotated[str | None, CURRENCY] = None,
) -> Response:
    """Confirmed, settled, held, available and reserved balance per currency, exact when called."""
    if currency is not None:
        exponent(currency)
    found = await get_balances_native(ws, request.app.state.native_reader, merchant_id, currency)
    answer = MerchantBalances(merchant_id=merchant_id, balances=[b.to_dict() for b in found],
                              lake_version=found[0].lake_version)
    # serialized by pydantic-core: FastAPI's path would validate the model again and walk it in Python
    return Response(answer.model_dump_json(by_alias=True), media_type="application/json")
