"""Auto fund-out over REST: configurations, the hourly batch trigger, batches, manual cash-out, payouts.

Paths and shapes are the published fund-out contract's (OpenAPI 3.0.3): `id` and `businessId` strings,
`day` and `hour` strings ("6", "0", "" when a frequency has none), `minimumBalance` a JSON number written
exactly. Requests may send `day` and `hour` as such strings, two-digit strings or integers. Roles:
configurations and cash-outs `ops` or the merchant itself, configurations also readable by `finance`;
batches `internal`, `ops`, `finance`; the trigger `internal` only. Bodies are read with exact decimals
(10.005 stays 10.005), then validated by the domain, whose 400 names the field. This module owns the wire
format: the domain returns dataclasses.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ops_pipeline.api.auth import require_roles
from ops_pipeline.api.correlation import REQUEST_HEADER, correlation_id
from ops_pipeline.api.deps import WorkspaceDep, run_domain
from ops_pipeline.api.errors import error_responses
from ops_pipeline.api.models import Timestamp
from ops_pipeline.auth import Principal
from ops_pipeline.errors import InvalidInput, OpsError
from ops_pipeline.fundout import batch, cashout, config
from ops_pipeline.fundout.batch import BatchReport, BatchSummary
from ops_pipeline.fundout.config import FundoutConfig
from ops_pipeline.fundout.payouts import Payout

log = logging.getLogger(__name__)
MAX_BODY = 16 * 1024
PROFILE = "/business-profiles/business/{businessId}"


def _channel(
    request: Request,
    country: Annotated[str | None, Header(alias="X-Chnl-CountryCode", max_length=8)] = None,
    group_member: Annotated[str | None, Header(alias="X-Chnl-Group-Member", max_length=64)] = None,
    device_type: Annotated[str | None, Header(alias="X-DeviceType", max_length=32)] = None,
    device_id: Annotated[str | None, Header(alias="X-Device-Id", max_length=128)] = None,
    locale: Annotated[str | None, Header(alias="X-locale", max_length=35)] = None,
    _correlation: Annotated[
        str | None,
        Header(
            alias=REQUEST_HEADER,
            max_length=128,
            description="Echoed in the response and used as the errors' correlationId.",
        ),
    ] = None,
) -> None:
    """The contract's channel headers: accepted and logged with the request's correlation id."""
    sent = {
        "country": country,
        "groupMember": group_member,
        "deviceType": device_type,
        "deviceId": device_id,
        "locale": locale,
    }
    if any(sent.values()):
        log.info(
            "fund-out %s %s correlation=%s channel=%s",
            request.method,
            request.url.path,
            correlation_id(request),
            {k: v for k, v in sent.items() if v},
        )


router = APIRouter(tags=["fund-out"], dependencies=[Depends(_channel)])
Owner = Annotated[Principal, Depends(require_roles("ops", merchant_self="businessId"))]
OwnerOrFinance = Annotated[Principal, Depends(require_roles("ops", "finance", merchant_self="businessId"))]
Internal = Annotated[Principal, Depends(require_roles("internal"))]
BatchReader = Annotated[Principal, Depends(require_roles("internal", "ops", "finance"))]
BusinessId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=config.MAX_BUSINESS_ID,
        description="The business (the ledger's merchant_id).",
    ),
]
BatchId = Annotated[int, Path(ge=1, le=batch.MAX_ID, description="A batch id.")]


# -- wire format -------------------------------------------------------------------------------------


def _exact(value: Any) -> str:
    """JSON with Decimal written as the number it is (never through a float)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_exact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_exact(v) for v in value) + "]"
    return json.dumps(value)


class ExactJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return _exact(content).encode()


def _time(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def config_json(c: FundoutConfig) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "businessId": c.business_id,
        "freqType": c.freq_type,
        "day": "" if c.day is None else str(c.day),
        "hour": str(c.hour),
        "minimumBalance": c.minimum_balance,
        "enabled": c.enabled,
        "timezone": c.timezone,
        "notifyEmail": c.notify_email,
        "createdAt": _time(c.created_at),
        "updatedAt": _time(c.updated_at),
    }


def payout_json(p: Payout) -> dict[str, Any]:
    return {
        "payoutId": p.id,
        "kind": p.kind,
        "businessId": p.business_id,
        "currency": p.currency,
        "amount": str(p.amount),
        "status": p.status,
        "slot": _time(p.slot),
        "batchId": p.batch_id,
        "bankPayoutId": p.bank_payout_id,
        "error": p.error,
        "createdAt": p.created_at.isoformat(),
        "updatedAt": p.updated_at.isoformat(),
    }


def _summary_json(s: BatchSummary) -> dict[str, Any]:
    return {
        "due": s.due,
        "skipped": s.skipped,
        "paid": s.paid,
        "failed": s.failed,
        "pending": s.pending,
        "amounts": {
            "paid": {c: str(v) for c, v in s.paid_amounts.items()},
            "failed": {c: str(v) for c, v in s.failed_amounts.items()},
        },
        "alerted": s.alerted,
        "missed": s.missed,
    }


def batch_json(b: BatchReport) -> dict[str, Any]:
    return {
        "batchId": b.id,
        "slot": b.slot.isoformat(),
        "status": b.status,
        "triggeredBy": b.triggered_by,
        "createdAt": b.created_at.isoformat(),
        "startedAt": _time(b.started_at),
        "finishedAt": _time(b.finished_at),
        "summary": _summary_json(b.summary),
    }


# -- documented shapes (OpenAPI); validation stays the domain's -----------------------------------------
# `float` below only writes "type": "number" into the schema: bodies are read by `json_body` with
# parse_float=Decimal and checked by the domain, so money never passes through a float.

HourText = Annotated[str, Field(pattern=r"^([0-9]|[01][0-9]|2[0-3])?$", max_length=2)]
DayText = Annotated[str, Field(pattern=r"^([0-9]|[0-2][0-9]|3[01])?$", max_length=2)]
Minimum = Annotated[float, Field(ge=0, lt=float(config.MAX_MINIMUM), description="At most 3 decimals.")]
Email = Annotated[str, Field(max_length=config.MAX_EMAIL, pattern=f"^{config.EMAIL}$")]
Timezone = Annotated[str, Field(max_length=config.MAX_TIMEZONE, pattern=f"^{config.TIMEZONE}$")]
ReadOnlyText = Annotated[str, Field(max_length=config.MAX_BUSINESS_ID)]


class ConfigChanges(BaseModel):
    """A PUT: any subset of the fields; those given replace theirs."""

    model_config = ConfigDict(extra="forbid")

    freqType: Literal["H", "D", "W", "M"] = Field(
        None, description="H hourly (minute 00), D daily, W weekly, M monthly."
    )
    hour: Annotated[int, Field(ge=0, le=23)] | HourText = Field(
        "22",
        description="0-23, local to `timezone`: an integer or its one- or two-digit string; may be '' for H.",
    )
    day: Annotated[int, Field(ge=0, le=31)] | DayText | None = Field(
        None, description="W: 0-6, 0 = Sunday (default 6). M: 1-31 (default 1). '' or absent for H and D."
    )
    minimumBalance: Minimum | Annotated[str, Field(pattern=f"^{config.DECIMAL}$")] = Field(
        0, description=">= 0 and below 10^15, at most 3 decimals; kept after payout. Read exactly."
    )
    enabled: bool = Field(False, description="A disabled configuration is kept but never runs.")
    timezone: Timezone | None = Field(None, description="IANA name; default OPS_TIMEZONE.")
    notifyEmail: Email | None = Field(None, description="Where payout notices are emailed.")
    id: ReadOnlyText | int | None = Field(None, description="Read-only: ignored.")
    businessId: ReadOnlyText | None = Field(None, description="Read-only: must be the path's if given.")
    createdAt: ReadOnlyText | None = Field(None, description="Read-only: ignored.")
    updatedAt: ReadOnlyText | None = Field(None, description="Read-only: ignored.")


class ConfigBody(ConfigChanges):
    """A configuration as clients create it."""

    freqType: Literal["H", "D", "W", "M"] = Field(
        description="H hourly (minute 00), D daily, W weekly, M monthly."
    )


class ConfigView(BaseModel):
    """A configuration as the contract returns it."""

    id: str
    businessId: str
    freqType: Literal["H", "D", "W", "M"]
    day: DayText
    hour: HourText
    minimumBalance: Minimum
    enabled: bool
    timezone: str
    notifyEmail: str | None
    createdAt: datetime
    updatedAt: datetime


class CashoutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a mistyped `currency` must not pay the default one

    amount: (
        Annotated[str, Field(max_length=cashout.MAX_AMOUNT_TEXT, pattern=r"^[0-9]+(\.[0-9]+)?$")]
        | Annotated[float, Field(gt=0)]
    ) = Field(description="Major units, exact: '125.50' or 125.50; at most 2^63-1 minor units.")
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = Field(
        None, description="ISO 4217; optional when the business has one currency."
    )


class PayoutView(BaseModel):
    payoutId: str
    kind: Literal["scheduled", "manual", "request"]
    businessId: str
    currency: str
    amount: str = Field(description="Major units, exact decimal text.")
    status: str
    slot: datetime | None
    batchId: int | None
    bankPayoutId: str | None
    error: str | None
    createdAt: datetime
    updatedAt: datetime


class PayoutList(BaseModel):
    businessId: str
    payouts: list[PayoutView]


class AmountsView(BaseModel):
    paid: dict[str, str]
    failed: dict[str, str]


class SummaryView(BaseModel):
    due: int
    skipped: int
    paid: int
    failed: int
    pending: int
    amounts: AmountsView
    alerted: bool
    missed: bool


class BatchView(BaseModel):
    batchId: int
    slot: datetime
    status: Literal[batch.STATUSES]  # type: ignore[valid-type]
    triggeredBy: str
    createdAt: datetime
    startedAt: datetime | None
    finishedAt: datetime | None
    summary: SummaryView


class BatchAccepted(BatchView):
    message: str


class BatchPageView(BaseModel):
    batches: list[BatchView]
    nextCursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


def documented(model: type[BaseModel]) -> dict:
    """The OpenAPI request body of a route that reads its JSON with `json_body` (not by FastAPI)."""
    schema = {"content": {"application/json": {"schema": model.model_json_schema()}}, "required": True}
    return {"requestBody": schema}


def answer(model: type[BaseModel], status: int, *errors: int) -> dict:
    """OpenAPI responses: `model` on `status`, the uniform error body on `errors`."""
    return {**error_responses(*errors), status: {"model": model}}


class TooLarge(OpsError):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


async def json_body(request: Request) -> dict[str, Any]:
    """A JSON object, numbers as exact Decimals, within fund-out's size cap (the API guard has already
    refused non-JSON, over-deep and NUL-bearing bodies)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and len(declared) < 20 and int(declared) > MAX_BODY:
        raise TooLarge(f"body: {declared} bytes; at most {MAX_BODY}")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise TooLarge(f"body: {len(raw)} bytes; at most {MAX_BODY}")
    try:
        body = json.loads(raw or b"null", parse_float=Decimal)
    except ValueError:
        raise InvalidInput("body: is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("body: must be a JSON object")
    return body


# -- routes ------------------------------------------------------------------------------------------


@router.post(
    f"{PROFILE}/autofundout",
    status_code=201,
    summary="Create the fund-out configuration",
    openapi_extra=documented(ConfigBody),
    response_class=ExactJSONResponse,
    responses=answer(ConfigView, 201, 400, 401, 403, 409, 413, 415),
)
async def create_config(request: Request, ws: WorkspaceDep, who: Owner, businessId: BusinessId):
    body = await json_body(request)
    made = await run_domain(request, config.create_config, ws, businessId, body, who.actor)
    return ExactJSONResponse(config_json(made), status_code=201)


@router.get(
    f"{PROFILE}/autofundout",
    summary="The fund-out configuration",
    response_class=ExactJSONResponse,
    responses=answer(ConfigView, 200, 401, 403, 404),
)
async def get_config(request: Request, ws: WorkspaceDep, who: OwnerOrFinance, businessId: BusinessId):
    return ExactJSONResponse(config_json(await run_domain(request, config.get_config, ws, businessId)))


@router.put(
    f"{PROFILE}/autofundout",
    summary="Change the fund-out configuration (fields given replace theirs)",
    openapi_extra=documented(ConfigChanges),
    response_class=ExactJSONResponse,
    responses=answer(ConfigView, 200, 400, 401, 403, 404, 413, 415),
)
async def update_config(request: Request, ws: WorkspaceDep, who: Owner, businessId: BusinessId):
    body = await json_body(request)
    changed = await run_domain(request, config.update_config, ws, businessId, body, who.actor)
    return ExactJSONResponse(config_json(changed))


@router.post(
    f"{PROFILE}/cashout",
    status_code=201,
    summary="Manual cash-out now (ignores minimumBalance)",
    openapi_extra=documented(CashoutBody),
    responses=answer(PayoutView, 201, 400, 401, 403, 404, 409, 413, 415),
)
async def create_cashout(
    request: Request,
    ws: WorkspaceDep,
    who: Owner,
    businessId: BusinessId,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Holds the amount, pays it at the bank and posts it; the answer's `status` is `posted` or `failed`
    (or `unknown` while the bank's answer is awaited). The same `Idempotency-Key` returns the first one."""
    body = await json_body(request)
    unknown = sorted(set(body) - {"amount", "currency"})
    if unknown:
        raise InvalidInput(f"{unknown[0][:40]}: is not a field; allowed: amount, currency")
    if "amount" not in body:
        raise InvalidInput("amount: is required")
    currency = body.get("currency")
    if currency is not None and (not isinstance(currency, str) or len(currency) > 3):
        raise InvalidInput(f"currency: {config.shown(currency)} is not an ISO 4217 currency")
    # On a thread even on SQLite: the bank's answer can take seconds.
    payout = await run_in_threadpool(
        cashout.cashout, ws, businessId, body["amount"], currency, who.actor, idempotency_key
    )
    return JSONResponse(payout_json(payout), status_code=201)


@router.get(
    f"{PROFILE}/payouts",
    summary="Recent payouts of the business (newest first)",
    responses=answer(PayoutList, 200, 401, 403),
)
async def list_payouts(
    request: Request, ws: WorkspaceDep, who: OwnerOrFinance, businessId: BusinessId
) -> dict:
    found = await run_domain(request, cashout.list_payouts, ws, businessId)
    return {"businessId": businessId, "payouts": [payout_json(p) for p in found]}


@router.post(
    "/business/autofundout",
    status_code=202,
    summary="Start the fund-out batch of the current hour",
    responses=answer(BatchAccepted, 202, 401, 403),
)
async def trigger_batch(request: Request, ws: WorkspaceDep, who: Internal) -> JSONResponse:
    """Answers at once (202, a `message` and the batch); the batch (with any missed slot of the last 24 h)
    runs after, on its own thread, so that neither this connection nor any other waits for it."""
    started = await run_domain(request, batch.trigger, ws, who.actor)
    request.app.state.fundout_runs.start(ws, who.actor)
    message = f"Fund-out batch {started.id} of slot {started.slot.isoformat()} accepted"
    return JSONResponse({"message": message, **batch_json(started)}, status_code=202)


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
    "/business/autofundout/batches",
    summary="Fund-out batches, newest slot first",
    responses=answer(BatchPageView, 200, 400, 401, 403),
)
async def list_batches(
    request: Request,
    ws: WorkspaceDep,
    who: BatchReader,
    slotFrom: Annotated[Timestamp | None, Query(description="Slots at or after this time.")] = None,
    slotTo: Annotated[Timestamp | None, Query(description="Slots at or before this time.")] = None,
    status: Annotated[Literal[batch.STATUSES] | None, Query()] = None,  # type: ignore[valid-type]
    cursor: Annotated[
        int | None, Query(ge=1, le=batch.MAX_ID, description="nextCursor of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=batch.MAX_PAGE)] = 50,
) -> dict:
    page = await run_domain(
        request,
        partial(
            batch.list_batches,
            ws,
            slot_from=slotFrom,
            slot_to=slotTo,
            status=status,
            after=cursor,
            limit=limit,
        ),
    )
    return {
        "batches": [batch_json(b) for b in page.batches],
        "nextCursor": None if page.next_cursor is None else str(page.next_cursor),
    }


@router.get(
    "/business/autofundout/batches/{batchId}",
    summary="A fund-out batch: status, counts, amounts",
    responses=answer(BatchView, 200, 400, 401, 403, 404),
)
async def get_batch(request: Request, ws: WorkspaceDep, who: BatchReader, batchId: BatchId) -> dict:
    return batch_json(await run_domain(request, batch.get_batch, ws, batchId))
