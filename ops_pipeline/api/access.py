"""The API's access log: one INFO line per request on logger `ops_pipeline.api.access`, with `method`,
`route` (the template), `path`, `status` and `durationMs` fields, and the request's bound `correlationId`
and `actor`. A pure ASGI middleware inside the correlation one."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ops_pipeline.observability import tracing

log = logging.getLogger("ops_pipeline.api.access")


class AccessLog:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            ms = round((time.perf_counter() - started) * 1000, 2)
            method, path = scope["method"], (scope.get("raw_path") or b"").decode("latin-1") or scope["path"]
            route = getattr(scope.get("route"), "path_format", None)
            fields = {"method": method, "route": route, "path": path, "status": status, "durationMs": ms}
            log.info("%s %s %s %.2f ms", method, path, status, ms, extra=fields)


def observed(app: ASGIApp) -> ASGIApp:
    """The access log; with tracing on, the correlation id and the actor on the request's span."""
    return tracing.request_attributes(AccessLog(app))
