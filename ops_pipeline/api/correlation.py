"""Correlation ids: taken from the request's `X-Request-Correlation-Id` (the fund-out contract's header) or
`X-Correlation-Id` when sane, else generated; used as the `correlationId` of error bodies and echoed on every
response in both headers. A pure ASGI middleware, so it adds no task or thread hop per request."""

from __future__ import annotations

import itertools
import re
import uuid

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ops_pipeline.observability import logs

HEADER = "X-Correlation-Id"
REQUEST_HEADER = "X-Request-Correlation-Id"
_RAW_HEADER = HEADER.lower().encode()
_RAW_REQUEST_HEADER = REQUEST_HEADER.lower().encode()
_SANE = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")
_PROCESS = uuid.uuid4().hex[:16]
_COUNTER = itertools.count(1)


def new_id() -> str:
    """Unique without a system call per request: a random per-process prefix and a counter."""
    return f"{_PROCESS}-{next(_COUNTER):x}"


def correlation_id(request: Request) -> str:
    """The id of the request being served: set by the middleware, or made here if it did not run."""
    return request.scope.setdefault("state", {}).setdefault("correlation_id", new_id())


def _incoming(headers) -> bytes | None:
    """The sane id the client sent, the contract's header first."""
    found = {k: v for k, v in headers if k in (_RAW_REQUEST_HEADER, _RAW_HEADER)}
    for name in (_RAW_REQUEST_HEADER, _RAW_HEADER):
        value = found.get(name)
        if value is not None and _SANE.fullmatch(value):
            return value
    return None


class CorrelationIdMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = _incoming(scope["headers"]) or new_id().encode()
        # The same state dict reaches the routes and the outer 500 handler.
        scope.setdefault("state", {})["correlation_id"] = raw.decode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", ()),
                    (_RAW_HEADER, raw),
                    (_RAW_REQUEST_HEADER, raw),
                ]
            await send(message)

        with logs.bind(correlation_id=raw.decode()):  # on every line logged while serving the request
            await self.app(scope, receive, send_with_id)
