"""Log lines as a deployment sees them: the real API and job-queue worker in subprocesses, their stderr one
JSON object per line with the request's correlation id and actor, or a job's ids; plain text on request;
ids bound in context; secrets redacted."""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from datetime import datetime

import httpx
import pytest

from ops_pipeline.auth import mint_token
from ops_pipeline.giftcards import kinds, records
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.jobtypes import JOB_TYPES
from ops_pipeline.jobqueue.model import State
from ops_pipeline.observability import logs
from ops_pipeline.workspace import Workspace
from tests import servers
from tests.conftest import make_settings

PRINCIPAL = {"principal_id": "P-CAFE-01", "legal_name": "Bean There", "upi_vpas": ["bt@ybl"]}


def json_lines(text: str) -> list[dict]:
    """Every line of `text` as JSON (fails on a line that is not one object)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def partner_ws(tmp_path, sim, sim_url):
    """A SQLite workspace whose partner and bank are the simulator over HTTP, which knows one principal."""
    assert sim.handle("POST", "/principals", PRINCIPAL)[0] == 201
    ws = Workspace(make_settings(tmp_path / "home", OPS_PARTNER_URL=sim_url, OPS_BANK_URL=sim_url))
    ws.init()
    yield ws
    ws.close()


def program_job(ws: Workspace) -> int:
    """A queued job with two partner calls (create a program, associate the principal), then its record (the
    principal's record is there)."""
    records.create(ws, kinds.PRINCIPALS, {"principal_id": PRINCIPAL["principal_id"], "name": "Bean There"}, "ops:a")
    attributes = copy.deepcopy(JOB_TYPES["gift_card_program_creation"].example)
    job, _ = service.create_job(ws, type="gift_card_program_creation", attributes=attributes, actor="alice")
    return job.id


def test_api_writes_one_json_line_per_request_with_correlation_id_and_actor(sqlite_ws, tmp_path):
    token = mint_token(sqlite_ws.settings, "ops", "alice")
    stderr = tmp_path / "api.err"
    with servers.api(servers.environment(sqlite_ws, OPS_LOG_FORMAT="json"), stderr) as url:
        created = httpx.post(f"{url}/api/job/create", json={"type": "manual", "attributes": JOB_TYPES["manual"].example},
                             headers={"Authorization": f"Bearer {token}", "X-Correlation-Id": "req-77"})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        assert httpx.get(f"{url}/api/job/{job_id}", headers={"X-Correlation-Id": "anon-1"}).status_code == 401
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as raw:  # not HTTP at all
            raw.sendall(b"\x16\x03\x01 not http\r\n\r\n")
            raw.recv(1000)
        time.sleep(0.3)
    lines = json_lines(stderr.read_text())  # every line is a JSON object
    access = [line for line in lines if line["logger"] == "ops_pipeline.api.access"]
    [create] = [line for line in access if line.get("correlationId") == "req-77"]
    assert {k: create[k] for k in ("level", "method", "route", "path", "status", "actor")} == {
        "level": "INFO", "method": "POST", "route": "/api/job/create", "path": "/api/job/create", "status": 201,
        "actor": "alice"}
    assert create["message"].startswith("POST /api/job/create 201 ") and create["message"].endswith(" ms")
    assert isinstance(create["durationMs"], float) and 0 < create["durationMs"] < 30_000
    assert datetime.fromisoformat(create["timestamp"]).utcoffset().total_seconds() == 0
    [refused] = [line for line in access if line.get("correlationId") == "anon-1"]
    assert (refused["route"], refused["path"], refused["status"]) == ("/api/job/{job_id}", f"/api/job/{job_id}", 401)
    assert "actor" not in refused  # no valid token, no actor
    assert all(line["correlationId"] for line in access)  # generated when the client sends none
    # uvicorn's own lines come through the same format
    assert any(line["logger"] == "uvicorn.error" and line["level"] == "WARNING" for line in lines)
    assert token not in stderr.read_text()


def test_worker_lines_carry_the_job_ids(partner_ws):
    job_id = program_job(partner_ws)
    env = servers.environment(partner_ws, OPS_LOG_FORMAT="json")
    done = servers.run(env, "jobs", "worker", "--until-idle", "--threads", "1", "--poll", "0.1")
    assert service.get_job(partner_ws, job_id).state == State.COMPLETED
    lines = json_lines("\n".join(line for line in done.stderr.splitlines() if line.startswith("{")))
    worker = [line for line in lines if line["logger"] == "ops_pipeline.jobqueue.worker"]
    assert [line["message"] for line in worker] == [
        f"job {job_id} (gift_card_program_creation): {step}"
        for step in ("create_program", "associate_principals", "record_program", "completed")]
    for line in worker:
        assert (line["jobId"], line["jobType"], line["level"]) == (job_id, "gift_card_program_creation", "INFO")
        assert re.fullmatch(r".+-\d+-1", line["worker"])  # host-pid-thread


def test_text_format_on_request(partner_ws):
    job_id = program_job(partner_ws)
    env = servers.environment(partner_ws, OPS_LOG_FORMAT="text")
    done = servers.run(env, "jobs", "worker", "--until-idle", "--threads", "1", "--poll", "0.1")
    [line] = [line for line in done.stderr.splitlines() if line.endswith("completed") or "completed  " in line]
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z INFO ops_pipeline\.jobqueue\.worker: "
        rf"job {job_id} \(gift_card_program_creation\): completed  "
        rf"jobId={job_id} jobType=gift_card_program_creation worker=\S+", line), line
    assert not any(line.startswith("{") for line in done.stderr.splitlines())


def test_default_format_is_text_on_a_terminal_and_json_otherwise():
    script = "from ops_pipeline.observability import logs; print(logs.log_format())"
    env = {k: v for k, v in os.environ.items() if k != "OPS_LOG_FORMAT"}
    env["PYTHONPATH"] = str(servers.ROOT)
    piped = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    primary, secondary = os.openpty()
    try:
        tty = subprocess.run([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=secondary,
                             text=True, check=True)
    finally:
        os.close(primary)
        os.close(secondary)
    assert (piped.stdout, tty.stdout) == ("json\n", "text\n")


def record(message: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("ops_pipeline.test", logging.ERROR, __file__, 1, message, args, exc_info)


def test_bound_ids_nest_and_unwind(monkeypatch):
    monkeypatch.setenv("OPS_LOG_FORMAT", "json")
    handler = logs.handler()
    with logs.bind(correlation_id="c-1"):
        logs.add(actor="alice")
        with logs.bind(job_id=7, batch_id=3):
            inner = json.loads(handler.format(record("inside")))
        outer = logs.bound()
    assert {k: inner[k] for k in ("correlationId", "actor", "jobId", "batchId")} == {
        "correlationId": "c-1", "actor": "alice", "jobId": 7, "batchId": 3}
    assert outer == {"correlationId": "c-1", "actor": "alice"}
    assert logs.bound() == {}
    assert set(json.loads(handler.format(record("outside")))) == {"timestamp", "level", "logger", "message"}


def test_tracebacks_are_one_string_and_secrets_are_redacted(monkeypatch, sqlite_ws):
    monkeypatch.setenv("OPS_LOG_FORMAT", "json")
    token = mint_token(sqlite_ws.settings, "ops", "alice")
    sealed = "gAAAAABp" + "x" * 80
    try:
        raise ValueError(f"bad token {token}")
    except ValueError:
        line = json.loads(logs.handler().format(record("got %s and %s", token, sealed, exc_info=sys.exc_info())))
    assert line["message"] == "got [redacted] and [redacted]"
    assert line["exc_info"].startswith("Traceback (most recent call last):\n")
    assert line["exc_info"].endswith("ValueError: bad token [redacted]")
    monkeypatch.setenv("OPS_LOG_FORMAT", "text")
    text = logs.handler().format(record("got %s", token))
    assert text.endswith("ERROR ops_pipeline.test: got [redacted]") and token not in text


def test_level_from_the_environment(monkeypatch):
    for value, level in (("debug", logging.DEBUG), ("WARNING", logging.WARNING), ("nonsense", logging.INFO),
                         ("", logging.INFO)):
        monkeypatch.setenv("OPS_LOG_LEVEL", value)
        assert logs.log_level() == level
