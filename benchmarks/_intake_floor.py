"""The floor for `bench_intake`: the same routes, request and answer models as `POST /api/operations` and
`GET /api/balances/{merchant_id}` on FastAPI + uvicorn, with no ledger behind them (every operation
"accepted" at once, a fixed balance) and no middleware, auth or access log. What parsing and answering
alone cost on this machine, measured in the same run as the real API.

    uvicorn benchmarks._intake_floor:app --port 8000 --no-access-log
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, FastAPI, Response

from ops_pipeline.api.balances import CurrencyBalance, MerchantBalances
from ops_pipeline.api.operations import Batch, Operation, OperationResult, Posted

app = FastAPI()
BALANCE = MerchantBalances(merchant_id="M1", lake_version=2**62, balances=[CurrencyBalance(
    currency="EUR", confirmed_balance="0.00", settled_balance="0.00", held="0.00", available="0.00",
    reserved="0.00", as_of="2026-11-01T00:00:00Z")]).model_dump_json(by_alias=True)


@app.post("/api/operations")
async def post_operations(body: Annotated[Operation | Batch, Body()]) -> Response:
    operations = body.operations if isinstance(body, Batch) else [body]
    posted = Posted(lake_version=0, operations=[OperationResult(
        falcon_operation_id=o.falcon_operation_id, kind=o.kind, status="accepted", ingest_id="floor")
        for o in operations])
    return Response(posted.model_dump_json(by_alias=True), media_type="application/json")


@app.get("/api/balances/{merchant_id}")
async def balances(merchant_id: str) -> Response:
    return Response(BALANCE, media_type="application/json")
