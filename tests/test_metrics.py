"""`/metrics` after a demo-sized run, on PostgreSQL, served by two API worker processes: every family the
issue names is there, and its values are those of the database and the lake.

The demo (one process), a job-queue worker run (another) and the API's two workers write their counters to
the workspace's metrics directory; the scrape adds them up, and reads the state gauges from the database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select, text

from ops_pipeline.auth import mint_token
from ops_pipeline.db.schema import (
    fundout_batches,
    fundout_payouts,
    ingest_runs,
    job_history,
    jobs,
    jobs_archive,
    notification_attempts,
    outbox,
    ticket_assignments,
    tickets,
)
from ops_pipeline.lake.tables import BALANCE_OPERATIONS, LEDGER_QUARANTINE
from ops_pipeline.settings import Settings
from ops_pipeline.workspace import Workspace
from tests.conftest import PG_ADMIN_URL
from tests.test_api_balances import free_port

CLI = str(Path(sys.executable).with_name("ops-pipeline"))
JOBS_POSTED = 12


def _env(home: Path, url: str) -> dict[str, str]:
    return {**os.environ, "OPS_HOME": str(home), "OPS_DATABASE_URL": url,
            "PROMETHEUS_MULTIPROC_DIR": str(home / "metrics")}


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    """(workspace, samples, text) after the demo and requests spread over two API workers."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    home = tmp_path_factory.mktemp("metrics-home")
    env = _env(home, url)
    subprocess.run([CLI, "demo", "--operations", "3000", "--merchants", "30"], env=env, check=True,
                   capture_output=True, timeout=600)
    port = free_port()
    server = subprocess.Popen([CLI, "api", "--port", str(port), "--workers", "2"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, server)
        ws = Workspace(Settings.from_env(env))
        headers = {"Authorization": f"Bearer {mint_token(ws.settings, 'ops', 'alice')}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            for i in range(JOBS_POSTED):  # new connections: both workers serve some of them
                body = {"type": "manual", "priority": "High",
                        "attributes": {"title": f"Check case {i}", "description": "metrics test"}}
                r = httpx.post(f"{base}/api/job/create", json=body, headers=headers, timeout=10)
                assert r.status_code == 201, r.text
            assert client.get("/api/job/999999999").status_code == 404
            exposition = httpx.get(f"{base}/metrics", timeout=30).text
        yield ws, _samples(exposition), exposition, env
    finally:
        server.terminate()
        server.wait(timeout=30)
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _wait(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, f"ops-pipeline api exited with {server.returncode}"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "ops-pipeline api did not start"
        time.sleep(0.1)


def _samples(text_: str) -> dict[str, dict[tuple, float]]:
    """sample name -> {sorted label items: value}."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text_):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _by(samples, name: str, *labels: str) -> dict[tuple, float]:
    """Values of `name` summed by the given labels (others added up), zeros left out."""
    out: Counter = Counter()
    for key, value in samples.get(name, {}).items():
        d = dict(key)
        out[tuple(d[k] for k in labels)] += value
    return {k: v for k, v in out.items() if v}


def _rows(ws: Workspace, query) -> dict[tuple, int]:
    with ws.engine.connect() as conn:
        return {tuple(str(v) for v in r[:-1]): r[-1] for r in conn.execute(query) if r[-1]}


def test_http_requests_counted_across_both_workers(scraped):
    _, samples, *_ = scraped
    created = _by(samples, "ops_http_requests_total", "route", "method", "status")
    assert created[("/api/job/create", "POST", "201")] == JOBS_POSTED
    assert created[("/api/job/{job_id}", "GET", "404")] == 1
    hist = _by(samples, "ops_http_request_duration_seconds_count", "route")
    assert hist[("/api/job/create",)] == JOBS_POSTED
    phases = _by(samples, "ops_http_request_phase_seconds_count", "route", "phase")
    assert {p for (r, p) in phases if r == "/api/job/create"} == {"db", "pool", "lock", "other"}
    db_time = _by(samples, "ops_http_request_phase_seconds_sum", "route", "phase")
    assert db_time[("/api/job/create", "db")] > 0


def test_job_queue_families_match_the_database(scraped):
    ws, samples, *_ = scraped
    assert _by(samples, "ops_jobqueue_jobs", "state", "type") == _rows(
        ws, select(jobs.c.state, jobs.c.type, func.count()).group_by(jobs.c.state, jobs.c.type))
    every = _rows(ws, select(jobs.c.type, func.count()).group_by(jobs.c.type))
    for (t,), n in _rows(ws, select(jobs_archive.c.type, func.count()).group_by(jobs_archive.c.type)).items():
        every[(t,)] = every.get((t,), 0) + n
    assert _by(samples, "ops_jobqueue_created_total", "type") == every
    claimed = _rows(ws, select(func.count()).where(job_history.c.reason == "claimed"))
    assert sum(_by(samples, "ops_jobqueue_claims_total", "type").values()) == sum(claimed.values()) > 0
    done = _rows(ws, select(jobs_archive.c.type, func.count()).where(jobs_archive.c.state == "Completed")
                 .group_by(jobs_archive.c.type))
    assert _by(samples, "ops_jobqueue_completions_total", "type") == done
    waiting = samples["ops_jobqueue_oldest_waiting_seconds"]
    assert dict(waiting)  # the manual jobs just posted wait for a person
    assert all(0 <= v < 3600 for v in waiting.values())


def test_tickets_fundout_ledger_outbox_match(scraped):
    ws, samples, *_ = scraped
    opened = _rows(ws, select(tickets.c.group_id, func.count()).group_by(tickets.c.group_id))
    assert _by(samples, "ops_tickets_opened_total", "group") == opened
    assigned = _rows(ws, select(ticket_assignments.c.group_id, ticket_assignments.c.agent_id, func.count())
                     .where(ticket_assignments.c.kind == "assigned")
                     .group_by(ticket_assignments.c.group_id, ticket_assignments.c.agent_id))
    assert _by(samples, "ops_tickets_assigned_total", "group", "agent") == assigned
    unassigned = _rows(ws, select(tickets.c.group_id, func.count())
                       .where(tickets.c.status == "open", tickets.c.agent_id.is_(None)).group_by(tickets.c.group_id))
    assert _by(samples, "ops_tickets_waiting_unassigned", "group") == unassigned

    assert _by(samples, "ops_fundout_payout_records", "status") == _rows(
        ws, select(fundout_payouts.c.status, func.count()).group_by(fundout_payouts.c.status))
    assert _by(samples, "ops_fundout_batches", "status") == _rows(
        ws, select(fundout_batches.c.status, func.count()).group_by(fundout_batches.c.status))
    # paid: posted ones, manual too, and the one the demo's bank sent back (returned)
    posted = _rows(ws, select(func.count()).where(fundout_payouts.c.status.in_(("posted", "returned"))))
    assert _by(samples, "ops_fundout_payouts_total", "status").get(("paid",), 0) == sum(posted.values()) > 0
    runs = _rows(ws, select(func.count()).where(fundout_batches.c.status == "done"))
    assert sum(samples["ops_fundout_batch_duration_seconds_count"].values()) == sum(runs.values())

    with ws.engine.connect() as conn:
        ingested = conn.execute(select(func.sum(ingest_runs.c.ingested))).scalar_one()
    assert _by(samples, "ops_ledger_ingest_rows_total", "outcome")[("ingested",)] == ingested > 0
    quarantine = ws.lake.open(LEDGER_QUARANTINE.name).to_pyarrow_table(columns=["reason_code"])
    by_reason = Counter(quarantine.column("reason_code").to_pylist())
    assert _by(samples, "ops_ledger_quarantined_rows_total", "reason") == {(k,): v for k, v in by_reason.items()}
    (version,) = samples["ops_ledger_log_version"].values()
    assert version == ws.lake.latest_version(BALANCE_OPERATIONS.name)
    assert list(samples["ops_ledger_replay_check_ok"].values()) == [1.0]  # the demo's Dagster run checked it

    backlog = _rows(ws, select(outbox.c.channel, func.count()).where(outbox.c.status == "pending")
                    .group_by(outbox.c.channel))
    assert _by(samples, "ops_outbox_backlog", "channel") == backlog
    attempts = _rows(ws, select(notification_attempts.c.channel, notification_attempts.c.ok, func.count())
                     .group_by(notification_attempts.c.channel, notification_attempts.c.ok))
    expected = {(c, "sent" if ok == "True" else "failed"): n for (c, ok), n in attempts.items()}
    assert _by(samples, "ops_outbox_deliveries_total", "channel", "outcome") == expected


def test_database_time_pool_and_lock_waits_are_recorded(scraped):
    _, samples, text_, _ = scraped
    kinds = _by(samples, "ops_db_statement_duration_seconds_count", "kind")
    assert kinds[("select",)] > 0 and kinds[("insert",)] > 0
    assert _by(samples, "ops_db_transaction_duration_seconds_count", "outcome")[("commit",)] > 0
    assert sum(samples["ops_db_pool_wait_seconds_count"].values()) > 0
    assert _by(samples, "ops_db_lock_wait_seconds_count", "lock")[("ledger",)] > 0  # the demo's ingests
    assert "ops_db_sessions_waiting_on_locks" in samples
    assert _by(samples, "ops_lake_commit_duration_seconds_count", "table")[("balance_operations",)] > 0
    calls = _by(samples, "ops_partner_calls_total", "partner", "outcome")
    assert calls and all(outcome == "2xx" for _, outcome in calls)  # the demo's jobs and payouts, all answered
    assert sum(samples["ops_event_loop_lag_seconds_count"].values()) > 0
    assert "ops_gc_pause_seconds_count" in samples
    assert "# TYPE ops_http_requests_total counter" in text_


def test_a_worker_host_serves_the_same_metrics_on_its_own_port(scraped):
    _, samples, _, env = scraped
    port = free_port()
    worker = subprocess.Popen([CLI, "jobs", "worker", "--threads", "1", "--metrics-port", str(port)], env=env,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert worker.poll() is None, f"the worker exited with {worker.returncode}"
            try:
                served = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "no /metrics on the worker's port"
                time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert served["ops_jobqueue_jobs"] == samples["ops_jobqueue_jobs"]
    assert served["ops_jobqueue_created_total"] == samples["ops_jobqueue_created_total"]
