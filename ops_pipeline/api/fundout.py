"""Auto fund-out over REST: configurations, the hourly batch trigger, batch status, manual cash-out.

Paths are the seed's, kept exactly (ARCHITECTURE section 6). Configurations and cash-outs: `ops` or the
merchant itself (`sub` = businessId). The batch trigger: `internal` only. Bodies are read with exact
decimals (a JSON number 10.005 stays 10.005), then validated by the domain, which names the field.
"""

from __future__ import annotations

import json
import logging
import threading
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ops_pipeline.api.auth import require_roles
from ops_pipeline.api.deps import WorkspaceDep, run_domain
from ops_pipeline.api.errors import error_responses
from ops_pipeline.auth import Principal
from ops_pipeline.errors import InvalidInput
from ops_pipeline.fundout import batch, cashout, config

router = APIRouter(tags=["fund-out"])
log = logging.getLogger(__name__)
Owner = Annotated[Principal, Depends(require_roles("ops", merchant_self="businessId"))]
OwnerOrFinance = Annotated[Principal, Depends(require_roles("ops", "finance", merchant_self="businessId"))]
Internal = Annotated[Principal, Depends(require_roles("internal"))]
BatchReader = Annotated[Principal, Depends(require_roles("internal", "ops", "finance"))]
BusinessId = Annotated[str, Path(max_length=64, description="The business (the ledger's merchant_id).")]
PROFILE = "/business-profiles/business/{businessId}"


class ConfigBody(BaseModel):
    """Documentation of the configuration body; validation is the domain's (400 names the field)."""

    freqType: str = Field(description="H hourly (minute 00), D daily, W weekly, M monthly.")
    hour: int | str = Field(22, description="0-23, local to `timezone`; an integer or a two-digit string.")
    day: int | str | None = Field(
        None, description="W: 0-6, 0 = Sunday (default 6). M: 1-31 (default 1). Ignored for H and D."
    )
    minimumBalance: Decimal | str = Field(
        Decimal(0), description=">= 0, at most 3 decimals; kept after payout."
    )
    enabled: bool = Field(False, description="A disabled configuration is kept but never runs.")
    timezone: str | None = Field(None, description="IANA name; default OPS_TIMEZONE.")
    notifyEmail: str | None = Field(None, description="Where payout notices are emailed.")


class CashoutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a mistyped `currency` must not pay the default one

    amount: str = Field(description="Major units, exact decimal, e.g. '125.50'.")
    currency: str | None = Field(None, description="ISO 4217; optional when the business has one currency.")


def _documented(model: type[BaseModel]) -> dict:
    schema = {"content": {"application/json": {"schema": model.model_json_schema()}}, "required": True}
    return {"requestBody": schema}


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null", parse_float=Decimal)
    except ValueError:
        raise InvalidInput("body: is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("body: must be a JSON object")
    return body


def _actor(who: Principal) -> str:
    return f"{who.role}:{who.sub}"


@router.post(
    f"{PROFILE}/autofundout",
    status_code=201,
    summary="Create the fund-out configuration",
    openapi_extra=_documented(ConfigBody),
    responses=error_responses(400, 401, 403, 409),
)
async def create_config(request: Request, ws: WorkspaceDep, who: Owner, businessId: BusinessId) -> dict:
    body = await _body(request)
    made = await run_domain(request, config.create_config, ws, businessId, body, _actor(who))
    return made.to_api()


@router.get(
    f"{PROFILE}/autofundout", summary="The fund-out configuration", responses=error_responses(401, 403, 404)
)
async def get_config(request: Request, ws: WorkspaceDep, who: Owner, businessId: BusinessId) -> dict:
    return (await run_domain(request, config.get_config, ws, businessId)).to_api()


@router.put(
    f"{PROFILE}/autofundout",
    summary="Change the fund-out configuration (fields given replace theirs)",
    openapi_extra=_documented(ConfigBody),
    responses=error_responses(400, 401, 403, 404),
)
async def update_config(request: Request, ws: WorkspaceDep, who: Owner, businessId: BusinessId) -> dict:
    body = await _body(request)
    return (await run_domain(request, config.update_config, ws, businessId, body, _actor(who))).to_api()


@router.post(
    f"{PROFILE}/cashout",
    status_code=201,
    summary="Manual cash-out now (ignores minimumBalance)",
    responses=error_responses(400, 401, 403, 404, 409),
)
async def create_cashout(
    request: Request,
    ws: WorkspaceDep,
    who: Owner,
    businessId: BusinessId,
    body: CashoutBody,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict:
    """Holds the amount, pays it at the bank and posts it; the answer's `status` is `posted` or `failed`
    (or `unknown` while the bank's answer is awaited). The same `Idempotency-Key` returns the first one."""
    # On a thread even on SQLite: the bank's answer can take seconds.
    payout = await run_in_threadpool(
        cashout.cashout, ws, businessId, body.amount, body.currency, _actor(who), idempotency_key
    )
    return payout.to_api()


@router.get(
    f"{PROFILE}/payouts",
    summary="Recent payouts of the business (newest first)",
    responses=error_responses(401, 403),
)
async def list_payouts(
    request: Request, ws: WorkspaceDep, who: OwnerOrFinance, businessId: BusinessId
) -> dict:
    found = await run_domain(request, cashout.list_payouts, ws, businessId)
    return {"businessId": businessId, "payouts": [p.to_api() for p in found]}


@router.post(
    "/business/autofundout",
    status_code=202,
    summary="Start the fund-out batch of the current hour",
    responses=error_responses(401, 403),
)
async def trigger_batch(request: Request, ws: WorkspaceDep, who: Internal) -> JSONResponse:
    """Answers at once with the batch id; the batch (with any missed slot of the last 24 h) runs after,
    on its own thread, so that neither this connection nor any other waits for it."""
    started = await run_domain(request, batch.trigger, ws, _actor(who))
    request.app.state.fundout_runs.start(ws, _actor(who))
    return JSONResponse(started, status_code=202)


class Runs:
    """Fund-out runs of one API process, on one thread: a trigger while a run is under way asks for one
    more run after it, however many triggers come (a burst of retries costs one run, not one each, and
    never a pile of threads each holding a database connection). A run cut short by a restart is resumed
    by the next one."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pending: str | None = None  # the actor of the run asked for next
        self.thread: threading.Thread | None = None

    def start(self, ws, actor: str) -> None:
        with self.lock:
            self.pending = actor
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, args=(ws,), name="fundout-run", daemon=True)
                self.thread.start()

    def wait(self, seconds: float) -> None:
        """At shutdown: let the run under way finish (each chunk is recorded before the next is sent)."""
        thread = self.thread
        if thread is not None:
            thread.join(seconds)

    def _loop(self, ws) -> None:
        while True:
            with self.lock:
                actor, self.pending = self.pending, None
                if actor is None:
                    self.thread = None
                    return
            try:
                batch.run_due(ws, actor)
            except Exception:  # the next trigger or the hourly schedule runs it again
                log.exception("fund-out run failed")


@router.get(
    "/business/autofundout/batches/{batchId}",
    summary="A fund-out batch: status, counts, amounts",
    responses=error_responses(401, 403, 404),
)
async def get_batch(request: Request, ws: WorkspaceDep, who: BatchReader, batchId: int) -> dict:
    return await run_domain(request, batch.get_batch, ws, batchId)
