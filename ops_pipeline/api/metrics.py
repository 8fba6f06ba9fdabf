"""The API's metrics: a pure ASGI middleware timing every request (by route template, method, status, and
by phase: db, pool, lock, other), an event-loop lag probe, and `GET /metrics` (no auth, like `/healthz`:
keep it inside the network boundary)."""

from __future__ import annotations

import asyncio
import time
from functools import cache
from typing import Any, NamedTuple

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ops_pipeline.observability import exposition, metrics
from ops_pipeline.observability.timing import CURRENT, Phases, watch_gc

LAG_PERIOD = 0.1
PHASES = ("db", "pool", "lock", "other")


def _route(scope: Scope) -> str:
    """The matched route's template (`/api/job/{job_id}`), never the raw path: bounded label values."""
    route = scope.get("route")
    return getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering
        phases = Phases()
        token = CURRENT.set(phases)

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            CURRENT.reset(token)
            seconds = time.perf_counter() - started
            series = _series(_route(scope), scope["method"], status)
            series.requests.inc()
            series.seconds.observe(seconds)
            other = max(0.0, seconds - phases.db - phases.pool - phases.lock)
            split = (phases.db, phases.pool, phases.lock, other)
            for histogram, value in zip(series.phases, split, strict=True):
                histogram.observe(value)
            if seconds > metrics.SLOW_REQUEST_SECONDS:
                series.slow.inc()
                for counter, value in zip(series.slow_phases, split, strict=True):
                    counter.inc(value)


class _Series(NamedTuple):
    """The labelled children one request updates (`labels()` costs microseconds per call)."""

    requests: Any
    seconds: Any
    phases: tuple
    slow: Any
    slow_phases: tuple


@cache
def _series(route: str, method: str, status: int) -> _Series:
    """Bounded: route templates x methods x statuses."""
    return _Series(
        metrics.HTTP_REQUESTS.labels(route, method, str(status)), metrics.HTTP_SECONDS.labels(route, method),
        tuple(metrics.HTTP_PHASE_SECONDS.labels(route, method, p) for p in PHASES),
        metrics.HTTP_SLOW.labels(route, method),
        tuple(metrics.HTTP_SLOW_PHASE_SECONDS.labels(route, method, p) for p in PHASES))


async def watch_event_loop() -> None:
    """Sleep `LAG_PERIOD` again and again; how late each wake-up comes is how long the loop was blocked."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + LAG_PERIOD
        await asyncio.sleep(LAG_PERIOD)
        metrics.EVENT_LOOP_LAG.observe(max(0.0, loop.time() - due))


def serve_metrics(request: Request) -> Response:
    """Prometheus text exposition: every process's counters and histograms, and the state gauges."""
    return Response(exposition.render(request.app.state.ws), media_type=exposition.CONTENT_TYPE)


def install(app: FastAPI) -> None:
    """The middleware (add it outermost but for correlation ids) and the route."""
    watch_gc()
    app.add_middleware(MetricsMiddleware)
    app.add_api_route("/metrics", serve_metrics, methods=["GET"], tags=["system"], include_in_schema=False)
