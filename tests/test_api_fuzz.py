"""Schemathesis against the real server (uvicorn on 127.0.0.1): every operation of /openapi.json with an ops
token, valid and invalid inputs (its coverage phase tries each documented bound and just past it; its fuzzing
phase random values). No answer is a 5xx, every answer matches its documented status, media type and schema,
invalid input is refused, and a 405 lists the methods the path takes.

Run through the `schemathesis` command with a JUnit report: its pytest plugin does not run on pytest 9 (it
reads `Function._nodeid`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from ops_pipeline.api.app import create_app
from ops_pipeline.auth import mint_token
from ops_pipeline.jobqueue import service as jobs
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.tickets import agents, groups
from ops_pipeline.tickets import tickets as tickets_service
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings
from tests.factories import write_merchants

pytestmark = pytest.mark.slow
EXAMPLES = 10  # random cases per operation in the fuzzing phase; a run takes ~15 s per database
CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
)


@contextmanager
def serving(app) -> Iterator[str]:
    """`app` under uvicorn in a thread on a free port of 127.0.0.1; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, name="api-under-fuzz", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def world(tmp_path, db_url) -> Iterator[Workspace]:
    """Something behind the ids the fuzzer may hit: balances, a group, agents, tickets, a job; on SQLite and
    on PostgreSQL (which refuses what SQLite stores, e.g. NUL characters)."""
    from ops_pipeline.ledger import merchants

    ws = Workspace(make_settings(tmp_path / "home", db_url))
    ws.init()
    merchants.load(ws, write_merchants(tmp_path / "merchants.csv"))
    post_entries(ws, [Entry("ADJUSTMENT", "a1", "M1", "EUR", 1000, "adjustment")], "test")
    group = groups.create_group(ws, "lead", "KYC", True)["group_id"]
    for agent in ("a1", "a2"):
        agents.create_agent(ws, "lead", agent, agent.upper(), f"{agent}@ops.example", [group], True)
    tickets_service.create_tickets(ws, "lead", [tickets_service.NewTicket(group_id=group, user_id="U1")] * 3)
    jobs.create_job(ws, type="manual", attributes={"title": "Call the bank"}, actor="lead")
    yield ws
    ws.close()


def test_every_operation_with_schemathesis(world, tmp_path):
    app = create_app(world.settings)
    operations = {f"{method.upper()} {path}" for path, item in app.openapi()["paths"].items() for method in item}
    token = mint_token(world.settings, "ops", "fuzzer", ttl_seconds=3600)
    report = tmp_path / "junit.xml"
    with serving(app) as url:
        run = subprocess.run(
            [str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}/openapi.json",
             "--header", f"Authorization: Bearer {token}", "--checks", ",".join(CHECKS),
             "--phases", "coverage,fuzzing", "--max-examples", str(EXAMPLES), "--seed", "9", "--workers", "1",
             "--report", "junit", "--report-junit-path", str(report)],
            capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"},
            cwd=tmp_path,  # where it keeps its own state (.schemathesis/)
        )
    cases = ET.parse(report).findall(".//testcase")
    failed = {c.get("name"): [f.get("message") or f.text for f in c if f.tag in ("failure", "error")]
              for c in cases}
    failed = {name: why for name, why in failed.items() if why}
    assert not failed, run.stdout[-20_000:]
    assert {c.get("name") for c in cases} == operations
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
