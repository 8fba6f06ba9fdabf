"""Every error as `{"error", "code", "correlationId"}` (ARCHITECTURE section 6).

Domain errors map by their `http_status` and `code`; request validation is 400 naming the field and the
value, except a body FastAPI cannot parse into its model (422: not JSON, a key missing or unknown, a value of
the wrong JSON type); a well-formed value outside the declared bounds is 400 like any other bad value. A 405
lists in `Allow` every method the path takes. Anything unexpected is a logged 500 without internals.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

from ops_pipeline.api.correlation import HEADER, REQUEST_HEADER, correlation_id
from ops_pipeline.auth import AuthError
from ops_pipeline.errors import OpsError

log = logging.getLogger(__name__)
_KNOWN = frozenset(s.value for s in HTTPStatus)
# Body errors of FastAPI's parsing into the model (422), with the types ending in _type or _parsing.
_UNPARSED = frozenset({"json_invalid", "missing", "extra_forbidden", "int_from_float"})
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_SHOWN = 60  # characters of a refused value quoted in a message


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
    message = "; ".join(describe(e) for e in errors)
    if any(e["loc"] and e["loc"][0] == "body" and _unparsed(e["type"]) for e in errors):
        return error_response(request, 422, "INVALID_BODY", message)
    return error_response(request, 400, "VALIDATION_ERROR", message)


def _unparsed(kind: str) -> bool:
    return kind in _UNPARSED or kind.endswith(("_type", "_parsing"))


def describe(error: dict) -> str:
    """'priority: 9 is invalid (Input should be less than or equal to 5)'; 'groupId: Field required'."""
    if error["type"] == "json_invalid":
        return f"body: is not valid JSON ({error.get('ctx', {}).get('error', 'JSON decode error')})"
    field = _field(error["loc"])
    if error["type"] in ("missing", "extra_forbidden"):
        return f"{field}: {error['msg']}"
    return f"{field}: {_shown(error.get('input'))} is invalid ({error['msg']})"


def _shown(value: object) -> str:
    """The refused value as written in a message: a long one cut, with its length."""
    if isinstance(value, str) and len(value) > _SHOWN:
        return f"{value[:_SHOWN]!r}... ({len(value)} characters)"
    shown = repr(value)
    return shown if len(shown) <= _SHOWN else f"{shown[:_SHOWN]}..."


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
    headers = exc.headers
    if exc.status_code == 405:
        # Starlette names the methods of the first route matching the path; the path may have several.
        allowed = ", ".join(_allowed(request))
        headers, message = {**(headers or {}), "Allow": allowed}, f"{message}; allowed: {allowed}"
    return error_response(request, exc.status_code, code, message, headers)


def _allowed(request: Request) -> list[str]:
    """The methods some route takes on this path (asked of each route: routers nest)."""
    path = {"type": "http", "path": request.scope["path"], "root_path": request.scope.get("root_path", "")}
    return [m for m in _METHODS
            if any(r.matches({**path, "method": m})[0] == Match.FULL for r in request.app.router.routes)]


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    cid = correlation_id(request)
    log.error("unhandled error (correlation id %s)", cid, exc_info=exc)
    # Sent by the outermost middleware, past the correlation middleware: add the header here.
    message = f"internal error (correlation id {cid})"
    return error_response(request, 500, "INTERNAL_ERROR", message, {HEADER: cid, REQUEST_HEADER: cid})


def install(app: FastAPI) -> None:
    app.add_exception_handler(OpsError, _ops_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
