"""`POST /api/operations`: live intake of confirmed and reconciled operations (`ledger.intake`).

The answer comes after the operations are committed to the log (group commit with other requests): 200
when every operation is accepted or a duplicate of one already taken in (with the original ingest id); 409
when one conflicts with the stored operation of the same (source, falcon_operation_id), naming the
differing fields; else 400 when a row breaks a rule, with the quarantine's reason per row. As with files,
the valid operations of a request are taken in even when others are refused (a retry of the whole request
is safe: they come back as duplicates), and refused rows are quarantined.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response
from pydantic import Field

from ops_pipeline.api.auth import require_roles
from ops_pipeline.api.correlation import correlation_id
from ops_pipeline.api.errors import error_responses
from ops_pipeline.api.models import CamelModel
from ops_pipeline.auth import Principal
from ops_pipeline.ledger import OPERATION_TYPES
from ops_pipeline.ledger.intake import MAX_OPERATIONS, Intake, PostResult

router = APIRouter(tags=["ledger"])


class Operation(CamelModel):
    """One operation: the columns of an operations file, as text (amounts exact decimals in major units).
    Values are checked by the ledger's rules, so a bad or missing one is a 400 with its quarantine reason."""

    kind: Literal["confirmed", "reconciled"]
    falcon_operation_id: str | None = None
    external_reference: str | None = None
    type: str | None = Field(default=None, description="One of " + ", ".join(OPERATION_TYPES) + ".")
    amount: str | None = Field(default=None, description="Exact decimal in major units, e.g. '86.30'.")
    currency: str | None = None
    operation_date: str | None = Field(default=None, description="ISO 8601; without an offset: OPS_TIMEZONE.")
    psp_id: str | None = None
    local_merchant_id: str | None = None
    shop_id: str | None = None


class Batch(CamelModel):
    operations: list[Operation] = Field(min_length=1, max_length=MAX_OPERATIONS)


class OperationResult(CamelModel):
    falcon_operation_id: str | None
    kind: str
    status: str = Field(description="accepted, duplicate (taken in before), conflict or rejected.")
    ingest_id: str | None = Field(description="The ingest that took the operation in first.")
    reason_code: str | None = None
    reason: str | None = None


class Posted(CamelModel):
    operations: list[OperationResult]
    lake_version: int = Field(description="A log version that includes every accepted operation.")


class Refused(Posted):
    """A 409 or 400: the error envelope with every operation's result."""

    error: str
    code: str
    correlation_id: str | None


@router.post(
    "/api/operations",
    summary="Post confirmed or reconciled operations",
    response_model=Posted,
    responses=error_responses(400, 401, 403, 409),
)
async def post_operations(
    request: Request, body: Annotated[Operation | Batch, Body()],
    principal: Annotated[Principal, Depends(require_roles("internal", "partner"))],
) -> Response:
    """One operation, or `{"operations": [...]}` with up to 10,000; answered once they are durable."""
    operations = body.operations if isinstance(body, Batch) else [body]
    intake: Intake = request.app.state.intake
    rows = [o.model_dump() for o in operations]
    result: PostResult = await asyncio.wrap_future(intake.submit(rows, principal.sub))
    posted = Posted(operations=[o._asdict() for o in result.outcomes], lake_version=result.lake_version)
    statuses = {o.status for o in result.outcomes}
    if not statuses & {"conflict", "rejected"}:
        # serialized by pydantic-core: FastAPI's path would validate the model again and walk it in Python
        return Response(posted.model_dump_json(by_alias=True), media_type="application/json")
    status, code, kind = (409, "CONFLICT", "conflict") if "conflict" in statuses else (
        400, "VALIDATION_ERROR", "rejected")
    refused = [o for o in result.outcomes if o.status == kind]
    message = f"operations: {len(refused)} {kind}; first: {refused[0].reason}"
    body = Refused(error=message, code=code, correlation_id=correlation_id(request), **vars(posted))
    return Response(body.model_dump_json(by_alias=True), status, media_type="application/json")
