"""Where time goes: database statements, transactions, pool and lock waits, garbage collection; and, inside an
API request, the same split per request (`Phases`), so `/metrics` can show what a p99 request waited on.

The request's `Phases` travels in a context variable; `anyio.to_thread` copies the context into the worker
thread, so a domain call run there adds its DB time to the request that made it.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ops_pipeline.observability import metrics

if TYPE_CHECKING:
    from sqlalchemy import Engine


@dataclass
class Phases:
    """Seconds one request spent in each phase (what is left of its total is `other`)."""

    db: float = 0.0
    pool: float = 0.0
    lock: float = 0.0
    in_lock_wait: bool = False  # the lock's own statement (pg_advisory_lock) counts as lock, not db


CURRENT: ContextVar[Phases | None] = ContextVar("ops_request_phases", default=None)


def _add(phase: str, seconds: float) -> None:
    phases = CURRENT.get()
    if phases is not None:
        setattr(phases, phase, getattr(phases, phase) + seconds)


@contextmanager
def lock_wait(name: str) -> Iterator[None]:
    """Time the wait for a writer lock: `with lock_wait("ledger"): acquire()`."""
    phases = CURRENT.get()
    started = time.perf_counter()
    if phases is not None:
        phases.in_lock_wait = True
    try:
        yield
    finally:
        waited = time.perf_counter() - started
        metrics.DB_LOCK_WAIT_SECONDS.labels(name).observe(waited)
        if phases is not None:
            phases.in_lock_wait = False
            phases.lock += waited


@contextmanager
def delta_commit(table: str) -> Iterator[None]:
    """Time a Delta write or commit of `table`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        metrics.DELTA_COMMIT_SECONDS.labels(table).observe(time.perf_counter() - started)


def _kind(statement: str) -> str:
    head = statement.lstrip()[:8].lower()
    for kind in ("select", "insert", "update", "delete", "with"):
        if head.startswith(kind):
            return "select" if kind == "with" else kind
    return "other"


def _statement(statement: str, seconds: float) -> None:
    metrics.DB_STATEMENT_SECONDS.labels(_kind(statement)).observe(seconds)
    phases = CURRENT.get()
    if phases is not None and not phases.in_lock_wait:
        phases.db += seconds


class TimedCursor:
    """A driver cursor in autocommit mode whose statements are timed like the engine's (each one is also
    a transaction): for the hot paths that skip SQLAlchemy (`JobQueue._pg_cursor`)."""

    def __init__(self, cursor):
        self._cursor = cursor

    def execute(self, statement: str, parameters=None):
        started = time.perf_counter()
        try:
            return self._cursor.execute(statement, parameters)
        finally:
            seconds = time.perf_counter() - started
            _statement(statement, seconds)
            metrics.DB_TRANSACTION_SECONDS.labels("commit").observe(seconds)

    def __getattr__(self, name: str):
        return getattr(self._cursor, name)


def instrument_engine(engine: Engine) -> None:
    """Statement and transaction time on every connection of `engine`. On SQLite, `BEGIN IMMEDIATE` is the
    wait for the write lock: it counts as a lock wait (`sqlite_write`), not as a statement."""
    from sqlalchemy import event

    outcomes = {o: metrics.DB_TRANSACTION_SECONDS.labels(o) for o in ("commit", "rollback")}

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info["ops_statement_at"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        seconds = time.perf_counter() - conn.info.pop("ops_statement_at", time.perf_counter())
        if statement.startswith("BEGIN IMMEDIATE"):
            metrics.DB_LOCK_WAIT_SECONDS.labels("sqlite_write").observe(seconds)
            _add("lock", seconds)
            return
        _statement(statement, seconds)

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.info["ops_transaction_at"] = time.perf_counter()

    def _ended(outcome: str):
        def ended(conn):
            started = conn.info.pop("ops_transaction_at", None)
            if started is not None:
                outcomes[outcome].observe(time.perf_counter() - started)
        return ended

    event.listen(engine, "commit", _ended("commit"))
    event.listen(engine, "rollback", _ended("rollback"))


def timed_pool_class():
    """A `QueuePool` that times `_do_get` (the wait for a free connection, or the connect); pass it as
    `poolclass` so that `dispose()`'s new pool is timed too."""
    from sqlalchemy.pool import QueuePool

    class TimedQueuePool(QueuePool):
        def _do_get(self):
            started = time.perf_counter()
            try:
                return super()._do_get()
            finally:
                waited = time.perf_counter() - started
                metrics.DB_POOL_WAIT_SECONDS.observe(waited)
                _add("pool", waited)

    return TimedQueuePool


# The collector can run inside any allocation, prometheus_client's own (holding its lock) included: the
# callback only notes the pause; a thread records the notes (a metric update there would deadlock).
_gc_started: list[float] = []
_gc_pauses: deque[tuple[str, float]] = deque(maxlen=100_000)
_GC_FLUSH_SECONDS = 1.0


def _on_gc(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_started.append(time.perf_counter())
    elif _gc_started:
        _gc_pauses.append((str(info["generation"]), time.perf_counter() - _gc_started.pop()))


def record_gc_pauses() -> None:
    """Record the pauses noted so far (the thread does it every second; a scrape does it first)."""
    while _gc_pauses:
        generation, seconds = _gc_pauses.popleft()
        metrics.GC_PAUSE.labels(generation).observe(seconds)


def _record_gc_pauses_forever() -> None:
    while True:
        time.sleep(_GC_FLUSH_SECONDS)
        record_gc_pauses()


def watch_gc() -> None:
    """Record every garbage collection pause (once per process)."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)
        threading.Thread(target=_record_gc_pauses_forever, name="ops-gc-pauses", daemon=True).start()


def freeze_heap() -> None:
    """Move everything alive now (modules, the app, its caches) out of the collector's sight, once a
    long-running process is ready. A full collection walks every tracked object: on the API's ~150k
    objects after start-up that was a 30-100 ms pause of every request in flight, now and then;
    after `gc.freeze()` it walks only what was made since (measured: 0.05 ms)."""
    gc.collect()
    gc.freeze()
