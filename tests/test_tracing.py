"""Spans as a collector sees them: the real API and job-queue worker in subprocesses export to an OTLP/HTTP
receiver on 127.0.0.1; a request's server span continues the caller's trace and holds its DB transaction,
a partner call carries `traceparent` to the partner. Without an endpoint, nothing of the SDK runs.

The server span is FastAPI's own (native since 0.165, on once an SDK provider is installed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from ops_pipeline.auth import mint_token
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.jobtypes import JOB_TYPES
from ops_pipeline.jobqueue.model import State
from ops_pipeline.observability import tracing
from ops_pipeline.partners.app import SimulatorApp
from ops_pipeline.partners.simulator import Simulator
from ops_pipeline.workspace import Workspace
from tests import servers
from tests.conftest import make_settings
from tests.otlp import receiving
from tests.test_logs import PRINCIPAL, program_job

TRACE_ID, PARENT_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def otlp_env(ws: Workspace, endpoint: str) -> dict[str, str]:
    return servers.environment(ws, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_BSP_SCHEDULE_DELAY="100")


def test_request_span_continues_the_callers_trace_and_holds_its_db_transaction(ws, tmp_path):
    system = ws.engine.dialect.name
    token = mint_token(ws.settings, "ops", "alice")
    body = {"type": "manual", "attributes": JOB_TYPES["manual"].example}
    with receiving() as otlp, servers.api(otlp_env(ws, otlp.url), tmp_path / "api.err") as url:
        created = httpx.post(f"{url}/api/job/create", json=body, headers={
            "Authorization": f"Bearer {token}", "X-Correlation-Id": "req-5",
            "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
        assert created.status_code == 201, created.text
        server = otlp.wait_for(lambda s: s.kind == "server" and s.trace_id == TRACE_ID)
        assert (server.service, server.name, server.parent_id) == ("ops-pipeline", "POST /api/job/create", PARENT_ID)
        assert {k: server.attributes.get(k) for k in ("http.request.method", "http.route",
                                                      "http.response.status_code", "ops.correlation_id")} == {
            "http.request.method": "POST", "http.route": "/api/job/create", "http.response.status_code": 201,
            "ops.correlation_id": "req-5"}
        assert server.attributes["user.id"] == "alice"
        db = otlp.wait_for(lambda s: s.name == "db.transaction" and s.trace_id == TRACE_ID)
        assert (db.kind, db.attributes["db.system.name"]) == ("client", system)
        if system == "sqlite":
            assert db.attributes["ops.db.outcome"] == "commit"
        else:  # the enqueue is one statement through the driver's cursor in autocommit mode
            assert db.attributes["ops.db.autocommit"] is True
        endpoint = otlp.wait_for(lambda s: s.span_id == db.parent_id)  # FastAPI's span of the route function
        assert (endpoint.name, endpoint.parent_id) == ("fastapi.endpoint", server.span_id)

        unknown = httpx.get(f"{url}/api/job/{created.json()['id']}", headers={"Authorization": "Bearer x"})
        assert unknown.status_code == 401
        refused = otlp.wait_for(lambda s: s.kind == "server" and s.attributes.get("http.response.status_code") == 401)
        assert (refused.name, refused.parent_id, refused.error) == ("GET /api/job/{job_id}", "", False)
        assert refused.trace_id != TRACE_ID  # no traceparent sent: a trace of its own


class RecordingApp:
    """The partner simulator, remembering the `traceparent` header of each request by path."""

    def __init__(self, sim: Simulator):
        self.app, self.seen = SimulatorApp(sim), {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.seen[scope["path"]] = dict(scope["headers"]).get(b"traceparent", b"").decode()
        await self.app(scope, receive, send)


@contextmanager
def recording_partner(sim: Simulator) -> Iterator[tuple[str, RecordingApp]]:
    app = RecordingApp(sim)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "partner simulator did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}", app
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_partner_calls_are_client_spans_of_the_job_and_carry_traceparent(tmp_path, sim):
    assert sim.handle("POST", "/principals", PRINCIPAL)[0] == 201
    with recording_partner(sim) as (partner_url, partner), receiving() as otlp:
        ws = Workspace(make_settings(tmp_path / "home", OPS_PARTNER_URL=partner_url, OPS_BANK_URL=partner_url))
        ws.init()
        try:
            job_id = program_job(ws)
            servers.run(otlp_env(ws, otlp.url), "jobs", "worker", "--until-idle", "--threads", "1", "--poll", "0.1")
            assert service.get_job(ws, job_id).state == State.COMPLETED
        finally:
            ws.close()
        job = otlp.wait_for(lambda s: s.name == "job.run")
        assert (job.attributes["ops.job.id"], job.attributes["ops.job.type"]) == (job_id, "gift_card_program_creation")
        program = otlp.wait_for(lambda s: s.kind == "client" and s.attributes.get("url.path") == "/programs")
        assert (program.name, program.trace_id, program.parent_id) == ("POST partner", job.trace_id, job.span_id)
        assert {k: program.attributes[k] for k in ("http.request.method", "http.response.status_code",
                                                   "server.address", "peer.service")} == {
            "http.request.method": "POST", "http.response.status_code": 201, "server.address": "127.0.0.1",
            "peer.service": "partner"}
        version, trace_id, parent_id, flags = partner.seen["/programs"].split("-")  # what the partner got
        assert (version, trace_id, parent_id, int(flags, 16) & 1) == ("00", job.trace_id, program.span_id, 1)
        db = otlp.wait_for(lambda s: s.name == "db.transaction" and s.trace_id == job.trace_id)
        assert db.parent_id == job.span_id  # the job's progress saved between actions


NO_ENDPOINT = """
import json, sys, threading
import httpx
from ops_pipeline.api.app import create_app
from ops_pipeline.db.engine import make_engine
from ops_pipeline.observability import tracing
app, engine, transport = object(), make_engine("sqlite://"), httpx.HTTPTransport()
same = [tracing.request_attributes(app) is app, tracing.instrument_engine(engine) is engine,
        tracing.traced_transport(transport, "partner") is transport]
with tracing.span("delta.commit", {"delta.table": "t"}) as span:
    same.append(span is None)
sdk = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter")))
from opentelemetry import trace
print(json.dumps({"enabled": tracing.enabled(), "same": same, "sdk": sdk,
                  "provider": type(trace.get_tracer_provider()).__name__,
                  "threads": [t.name for t in threading.enumerate()]}))
"""


def test_without_an_endpoint_nothing_of_the_sdk_runs():
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(servers.ROOT)
    done = subprocess.run([sys.executable, "-c", NO_ENDPOINT], env=env, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"enabled": False, "same": [True, True, True, True], "sdk": [],
                                       "provider": "ProxyTracerProvider", "threads": ["MainThread"]}


@pytest.mark.skipif(tracing.wanted(), reason="this test process exports spans")
def test_tracing_off_costs_nothing_measurable_per_request():
    """Off, the request path has no tracing code (the hooks hand back what they got); a `span` block, as
    around a Delta commit, costs well under the 5 microseconds allowed per request."""
    rounds = 100_000
    started = time.perf_counter()
    for _ in range(rounds):
        with tracing.span("delta.commit", {"delta.table": "t"}):
            pass
    per_block = (time.perf_counter() - started) / rounds
    assert per_block < 5e-6, f"{per_block * 1e6:.2f} µs"
