"""A local OTLP/HTTP trace receiver for tracing tests: what a collector's `otlp` receiver does on
`POST /v1/traces` (protobuf, optionally gzip), on 127.0.0.1, keeping every span it was sent."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str  # "" for a root span
    attributes: dict[str, Any]
    error: bool


def _value(any_value) -> Any:
    field = any_value.WhichOneof("value")
    return getattr(any_value, field) if field else None


def _spans(request: ExportTraceServiceRequest) -> list[Span]:
    found = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                found.append(Span(
                    service=resource.get("service.name", ""), name=s.name, kind=KINDS.get(s.kind, str(s.kind)),
                    trace_id=s.trace_id.hex(), span_id=s.span_id.hex(), parent_id=s.parent_span_id.hex(),
                    attributes={a.key: _value(a.value) for a in s.attributes}, error=s.status.code == 2,
                ))
    return found


class Receiver:
    def __init__(self, url: str):
        self.url = url
        self.spans: list[Span] = []
        self.lock = threading.Lock()

    def wait_for(self, match: Callable[[Span], bool], timeout: float = 30.0) -> Span:
        """The first span received that `match`es, waiting for the exporter's next batch if need be."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                hits = [s for s in self.spans if match(s)]
            if hits:
                return hits[0]
            assert time.monotonic() < deadline, f"no such span; received: {[s.name for s in self.spans]}"
            time.sleep(0.05)


@contextmanager
def receiving() -> Iterator[Receiver]:
    """Serve the receiver in a thread; yields it (its `url` is the OTLP endpoint, without `/v1/traces`)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            with receiver.lock:
                receiver.spans.extend(_spans(request))
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
