"""Tracing, switched on by the environment: spans are exported over OTLP/HTTP only when
`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not
`true`); `OTEL_SERVICE_NAME` names the service (default `ops-pipeline`), and the SDK's other `OTEL_*`
variables apply.

Off, no SDK is installed and every hook here hands back what it was given (the app, the engine, the
transport) or a shared no-op context: no cost per request. On, `spans` holds the SDK setup
and the instrumentation. The hooks, one line at each site:

- HTTP requests: FastAPI's own tracing (FastAPI >= 0.165, on once an SDK provider is installed) makes a
  SERVER span per request, named for its route (`POST /api/job/create`), continuing the caller's W3C
  `traceparent`; `request_attributes(app)` adds the correlation id and the actor to it;
- `instrument_engine(engine)`: a `db.transaction` span per transaction inside a traced operation, and
  `autocommit_span(system)` for statements sent through a driver cursor in autocommit mode;
- `span("delta.commit", {...})`: a span around a block (Delta commits, a queue job, a fund-out batch);
- `traced_transport(transport, "partner")`: a CLIENT span per outgoing request, `traceparent` sent along.
"""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_NO_SPAN = nullcontext()
_on: bool | None = None  # decided once per process, on first use
_lock = threading.Lock()


def wanted() -> bool:
    """Whether the environment asks for spans to be exported."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name, "").strip() for name in ENDPOINTS)


def enabled() -> bool:
    """Whether spans are recorded in this process; on the first call, installs the SDK if `wanted()`."""
    global _on
    if _on is None:
        with _lock:
            if _on is None:
                on = wanted()
                if on:
                    from ops_pipeline.observability import spans

                    spans.install()
                _on = on
    return _on


def span(name: str, attributes: dict[str, Any] | None = None) -> AbstractContextManager:
    """A span around a block (the current span's child), or a no-op when tracing is off."""
    if not enabled():
        return _NO_SPAN
    from ops_pipeline.observability import spans

    return spans.tracer().start_as_current_span(name, attributes=attributes)


def request_attributes(app):
    """The ASGI `app`, adding the correlation id and the actor to each request's span when tracing is on;
    `app` itself otherwise."""
    if not enabled():
        return app
    from ops_pipeline.observability import spans

    return spans.RequestAttributes(app)


def instrument_engine(engine: Engine) -> Engine:
    """Give `engine` a `db.transaction` span per transaction when tracing is on; returns `engine`."""
    if enabled():
        from ops_pipeline.observability import spans

        spans.instrument_engine(engine)
    return engine


def autocommit_span(system: str) -> AbstractContextManager:
    """A `db.transaction` span around statements a driver cursor sends in autocommit mode (each its own
    transaction, outside SQLAlchemy's), inside a traced operation only; a no-op otherwise."""
    if not enabled():
        return _NO_SPAN
    from ops_pipeline.observability import spans

    return spans.autocommit_span(system)


def traced_transport(transport, peer: str, path: bool = True):
    """An httpx transport whose requests are CLIENT spans carrying `traceparent`, or `transport` itself when
    tracing is off. `peer` names the other side; `path=False` keeps the URL path out of the span (for URLs
    whose path is itself a secret, as in chat webhooks)."""
    if not enabled():
        return transport
    from ops_pipeline.observability import spans

    return spans.TracedTransport(transport, peer, path)


def current_ids() -> dict[str, str] | None:
    """`traceId` and `spanId` of the span being recorded here, for log lines; None when there is none."""
    if not _on:
        return None
    from ops_pipeline.observability import spans

    return spans.current_ids()
