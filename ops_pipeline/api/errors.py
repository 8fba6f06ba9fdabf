"""Every error as `{"error", "code", "correlationId"}` (ARCHITECTURE section 6).

Domain errors map by their `http_status` and `code`; request validation is 400 naming the field, except
a body FastAPI cannot parse (422); anything unexpected is a logged 500 without internals.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from ops_pipeline.api.correlation import HEADER, correlation_id
from ops_pipeline.auth import AuthError
from ops_pipeline.errors import OpsError

log = logging.getLogger(__name__)
_KNOWN = frozenset(s.value for s in HTTPStatus)


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str = Field(description="What went wrong; for validation errors it names the field.")
    code: str = Field(description="Machine-readable code, e.g. VALIDATION_ERROR, UNAUTHORIZED, NOT_FOUND.")
    correlationId: str = Field(description="Also in the X-Correlation-Id header; quote it when reporting.")


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI `responses=` entries: the error body for these statuses and for any other 4XX (this also
    replaces FastAPI's default 422 entry, whose body we never send for parameters)."""
    documented = {s: {"model": ErrorBody, "description": HTTPStatus(s).phrase} for s in statuses}
    return documented | {"4XX": {"model": ErrorBody, "description": "Client error"}}


def error_response(request: Request, status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": message, "code": code, "correlationId": correlation_id(request)}
    return JSONResponse(body, status, headers)


async def _ops_error(request: Request, exc: OpsError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthError) else None
    return error_response(request, exc.http_status, exc.code, str(exc), headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    in_body = any(e["loc"] and e["loc"][0] == "body" for e in errors)
    message = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in errors)
    if in_body:
        return error_response(request, 422, "INVALID_BODY", message)
    return error_response(request, 400, "VALIDATION_ERROR", message)


def _field(loc: tuple) -> str:
    """('query', 'currency') -> 'currency'; ('body', 'items', 0, 'amount') -> 'items[0].amount'."""
    parts = [str(p) for p in loc[1:]] or [str(p) for p in loc]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    code = HTTPStatus(exc.status_code).name if exc.status_code in _KNOWN else f"HTTP_{exc.status_code}"
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return error_response(request, exc.status_code, code, message, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    cid = correlation_id(request)
    log.error("unhandled error (correlation id %s)", cid, exc_info=exc)
    # Sent by the outermost middleware, past the correlation middleware: add the header here.
    message = f"internal error (correlation id {cid})"
    return error_response(request, 500, "INTERNAL_ERROR", message, {HEADER: cid})


def install(app: FastAPI) -> None:
    app.add_exception_handler(OpsError, _ops_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
