"""The OpenTelemetry side of `tracing`, imported only when tracing is on: the SDK provider with its OTLP/HTTP
exporter, and the instrumentation of requests, transactions and outgoing calls.

Attribute names follow OpenTelemetry's semantic conventions (`http.request.method`, `http.route`,
`http.response.status_code`, `db.system.name`, `server.address`...); ours are under `ops.`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

import httpx
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from ops_pipeline.observability import logs

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_SERVICE = "ops-pipeline"
_SPAN_KEY = "ops_transaction_span"  # in a connection's `info`


def install() -> None:
    """The SDK provider: batches of spans to the OTLP/HTTP endpoint of the environment; flushed at exit."""
    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def tracer() -> trace.Tracer:
    return trace.get_tracer("ops_pipeline")


def current_ids() -> dict[str, str] | None:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return {"traceId": format(context.trace_id, "032x"), "spanId": format(context.span_id, "016x")}


class RequestAttributes:
    """A pure ASGI middleware adding the request's correlation id and actor (`user.id`) to its SERVER span.

    The span itself is FastAPI's own (FastAPI >= 0.165 traces every request natively once an SDK provider
    is installed): named `METHOD /route/{template}`, continuing the caller's `traceparent`, with the
    semantic-convention attributes and spans for dependencies, the endpoint and serialization."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()
        if not span.is_recording():
            await self.app(scope, receive, send)
            return
        correlation = scope.get("state", {}).get("correlation_id")
        if correlation:
            span.set_attribute("ops.correlation_id", correlation)

        async def send_with_actor(message: Message) -> None:
            if message["type"] == "http.response.start":  # FastAPI ends the span with the response
                actor = logs.bound().get("actor")  # bound by authentication
                if actor:
                    span.set_attribute("user.id", actor)
            await send(message)

        await self.app(scope, receive, send_with_actor)


def instrument_engine(engine: Engine) -> None:
    """A CLIENT span `db.transaction` from each transaction's BEGIN to its COMMIT or ROLLBACK (SQLAlchemy's
    events: they fire as the driver is asked to commit, so the commit's own round trip is not in the span),
    when it runs inside a traced operation (a request, a job, a commit): idle polls make no traces. On
    SQLite the span includes the wait for the write lock (`BEGIN IMMEDIATE`)."""
    from sqlalchemy import event

    system = engine.dialect.name

    def begin(conn) -> None:
        if trace.get_current_span().get_span_context().is_valid:
            conn.info[_SPAN_KEY] = tracer().start_span(
                "db.transaction", kind=SpanKind.CLIENT, attributes={"db.system.name": system}
            )

    def ending(outcome: str):
        def end(conn) -> None:
            span = conn.info.pop(_SPAN_KEY, None)
            if span is not None:
                span.set_attribute("ops.db.outcome", outcome)
                span.end()

        return end

    event.listen(engine, "begin", begin, insert=True)  # before engine.py's BEGIN IMMEDIATE
    event.listen(engine, "commit", ending("commit"))
    event.listen(engine, "rollback", ending("rollback"))


def autocommit_span(system: str) -> AbstractContextManager:
    if not trace.get_current_span().get_span_context().is_valid:
        return nullcontext()
    attributes = {"db.system.name": system, "ops.db.autocommit": True}
    return tracer().start_as_current_span("db.transaction", kind=SpanKind.CLIENT, attributes=attributes)


class TracedTransport(httpx.BaseTransport):
    """Each request is a CLIENT span named `METHOD peer` (each retry its own), its `traceparent` sent along;
    4xx and 5xx answers mark it an error. No query string, user info or body is recorded."""

    def __init__(self, inner: httpx.BaseTransport, peer: str, path: bool = True):
        self.inner, self.peer, self.path = inner, peer, path

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        attributes = {"http.request.method": request.method, "server.address": url.host, "server.port": port,
                      "peer.service": self.peer}
        if self.path:
            attributes["url.path"] = url.path
        with tracer().start_as_current_span(f"{request.method} {self.peer}", kind=SpanKind.CLIENT,
                                            attributes=attributes) as span:
            propagate.inject(request.headers)
            response = self.inner.handle_request(request)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_status(StatusCode.ERROR)
            return response

    def close(self) -> None:
        self.inner.close()

