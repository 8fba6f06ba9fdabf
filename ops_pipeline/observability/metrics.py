"""The Prometheus metrics every ops-pipeline process records, in one catalogue.

Events (requests, DB time, claims, payouts, ingests, deliveries...) are counters and histograms kept by
`prometheus_client` in multiprocess mode: each process writes its values to memory-mapped files in one
directory, and `/metrics` adds up every process that wrote there (API workers, job-queue workers, Dagster
runs, CLI commands on the same host). The directory is `PROMETHEUS_MULTIPROC_DIR` when set, else
`OPS_METRICS_DIR`, else `$OPS_HOME/metrics`; it is chosen when this module is first imported, and child
processes inherit it. Gauges of state (queue depth, backlog, open tickets) are read from the database when
scraped (`observability.state`), so they are right however many processes there are.
"""

from __future__ import annotations

import os
from pathlib import Path

from ops_pipeline.settings import PRIVATE_DIR

ENV = "PROMETHEUS_MULTIPROC_DIR"


def _directory() -> Path:
    chosen = os.environ.get(ENV) or os.environ.get("OPS_METRICS_DIR")
    path = Path(chosen) if chosen else Path(os.environ.get("OPS_HOME") or "./.ops") / "metrics"
    path = path.resolve()
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    os.environ[ENV] = str(path)  # child processes (uvicorn workers, run workers) write beside us
    return path


DIRECTORY = _directory()

from prometheus_client import Counter, Gauge, Histogram, values  # noqa: E402  (after ENV is set)

if not getattr(values.ValueClass, "_multiprocess", False):  # prometheus_client was imported before ENV
    values.ValueClass = values.MultiProcessValue()

# Seconds: sub-millisecond to a minute, fine where the write-path targets are (10-100 ms).
FAST = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5,
        1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SLOW = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 40.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

# -- HTTP --------------------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter("ops_http_requests", "HTTP requests answered, by route template, method and status.",
                        ["route", "method", "status"])
HTTP_SECONDS = Histogram("ops_http_request_duration_seconds",
                         "Time from a request's arrival to the end of its response.", ["route", "method"],
                         buckets=FAST)
# Where a request's time went: db (statements), pool (waiting for a connection), lock (waiting for a
# writer lock), other (everything else: Python, JSON, the event loop).
HTTP_PHASE_SECONDS = Histogram("ops_http_request_phase_seconds",
                               "A request's time by phase: db, pool, lock, other.",
                               ["route", "method", "phase"], buckets=FAST)
# The same split summed over slow requests only (above SLOW_REQUEST_SECONDS): divided by their count, where
# the time of a tail request goes.
SLOW_REQUEST_SECONDS = 0.025
HTTP_SLOW = Counter("ops_http_slow_requests", f"Requests slower than {SLOW_REQUEST_SECONDS * 1000:g} ms.",
                    ["route", "method"])
HTTP_SLOW_PHASE_SECONDS = Counter("ops_http_slow_request_phase_seconds",
                                  "Time of the slow requests, summed by phase: db, pool, lock, other.",
                                  ["route", "method", "phase"])
EVENT_LOOP_LAG = Histogram("ops_event_loop_lag_seconds",
                           "How late the API's event loop ran a timer due every 100 ms (a blocked loop).",
                           buckets=FAST)
GC_PAUSE = Histogram("ops_gc_pause_seconds", "Garbage collector pauses, by generation.", ["generation"],
                     buckets=FAST)

# -- database ------------------------------------------------------------------------------------------
DB_STATEMENT_SECONDS = Histogram("ops_db_statement_duration_seconds",
                                 "Statement time, by kind (select, insert, update, delete, other).",
                                 ["kind"], buckets=FAST)
DB_TRANSACTION_SECONDS = Histogram("ops_db_transaction_duration_seconds",
                                   "Time from BEGIN to COMMIT or ROLLBACK, by outcome.", ["outcome"],
                                   buckets=FAST)
DB_POOL_WAIT_SECONDS = Histogram("ops_db_pool_wait_seconds",
                                 "Time to get a connection from the pool (a new one included).", buckets=FAST)
DB_LOCK_WAIT_SECONDS = Histogram("ops_db_lock_wait_seconds",
                                 "Time waiting for a named writer lock (ledger, fund-out...), by lock.",
                                 ["lock"], buckets=FAST)

# -- job queue -------------------------------------------------------------------------------------------
JOBS_CREATED = Counter("ops_jobqueue_created", "Jobs enqueued, by type.", ["type"])
JOBS_CLAIMED = Counter("ops_jobqueue_claims", "Jobs claimed by workers, by type.", ["type"])
JOBS_COMPLETED = Counter("ops_jobqueue_completions", "Jobs completed, by type.", ["type"])
JOBS_FAILED = Counter("ops_jobqueue_failures", "Jobs failed for good, by type.", ["type"])
JOBS_RETRIED = Counter("ops_jobqueue_retries", "Failed attempts put back in the queue, by type.", ["type"])
JOBS_RESCUED = Counter("ops_jobqueue_rescues", "Jobs taken back from a worker whose lease ran out.")
JOBS_EXPIRED = Counter("ops_jobqueue_expiries", "Jobs expired before they were claimed.")
JOB_SECONDS = Histogram("ops_jobqueue_job_duration_seconds", "Time from claim to end of a job, by type.",
                        ["type", "outcome"], buckets=SLOW)

# -- fund-out --------------------------------------------------------------------------------------------
FUNDOUT_BATCH_SECONDS = Histogram("ops_fundout_batch_duration_seconds",
                                  "Wall time of one fund-out slot's batch.", buckets=SLOW)
FUNDOUT_PAYOUTS = Counter("ops_fundout_payouts", "Payouts ended, by status (paid, failed, pending).",
                          ["status"])
FUNDOUT_MISSED_SLOTS = Counter("ops_fundout_missed_slots", "Hourly slots found missed (never paid).")

# -- tickets ---------------------------------------------------------------------------------------------
TICKETS_OPENED = Counter("ops_tickets_opened", "Tickets opened, by group.", ["group"])
TICKETS_ASSIGNED = Counter("ops_tickets_assigned", "Ticket assignments, by group and agent.",
                           ["group", "agent"])
TICKETS_RESOLVED = Counter("ops_tickets_resolved", "Tickets resolved or closed, by group and agent.",
                           ["group", "agent"])

# -- ledger ----------------------------------------------------------------------------------------------
LEDGER_ROWS = Counter("ops_ledger_ingest_rows", "Rows ingested, by source file kind and outcome "
                      "(ingested, duplicate, quarantined).", ["kind", "outcome"])
LEDGER_INGEST_SECONDS = Histogram("ops_ledger_ingest_duration_seconds", "Time to ingest one file, by kind.",
                                  ["kind"], buckets=SLOW)
LEDGER_QUARANTINED = Counter("ops_ledger_quarantined_rows", "Rows quarantined, by reason.", ["reason"])
LEDGER_LOG_VERSION = Gauge("ops_ledger_log_version", "Version of the transaction log after the last commit.",
                           multiprocess_mode="mostrecent")
LEDGER_REPLAY_OK = Gauge("ops_ledger_replay_check_ok",
                         "1 when the last replay check found the cached balances equal to the log, else 0.",
                         multiprocess_mode="mostrecent")
LEDGER_REPLAY_AT = Gauge("ops_ledger_replay_check_timestamp_seconds", "When the last replay check ran.",
                         multiprocess_mode="mostrecent")
DELTA_COMMIT_SECONDS = Histogram("ops_lake_commit_duration_seconds", "Delta commits, by table.", ["table"],
                                 buckets=FAST)

# -- notifications ---------------------------------------------------------------------------------------
OUTBOX_DELIVERIES = Counter("ops_outbox_deliveries", "Notification delivery attempts, by channel and outcome "
                            "(sent, failed).", ["channel", "outcome"])

# -- partners --------------------------------------------------------------------------------------------
PARTNER_CALLS = Counter("ops_partner_calls", "Calls to partner APIs, by partner and outcome.",
                        ["partner", "outcome"])
PARTNER_SECONDS = Histogram("ops_partner_call_duration_seconds", "Partner API call time, by partner.",
                            ["partner"], buckets=FAST)
