"""Workers: claim jobs, run their actions in order, record progress after each, finish or fail them.

A job's progress maps each action done to its result, so a retried or rescued job skips those actions;
the action in flight when a worker died runs again with the same idempotency key, so the partner does
not repeat it. While a batch runs, a heartbeat thread extends the leases; a worker that loses a lease
(the rescuer gave its job to another) stops touching that job. Sensitive attributes are decrypted in
memory for the actions only and never logged.

`run_pool` is `ops-pipeline jobs worker`: a standalone pool of worker threads (no Dagster needed) that
also runs the rescuer and the expiry sweeper now and then.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from ops_pipeline.crypto import cipher
from ops_pipeline.errors import InvalidInput, OpsError
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.actions import ActionContext, ActionError
from ops_pipeline.jobqueue.jobtypes import AUTOMATED_TYPES, JOB_TYPES, JobType
from ops_pipeline.jobqueue.model import Job, State
from ops_pipeline.jobqueue.queue import JobQueue, LeaseLost
from ops_pipeline.observability import logs, metrics, tracing
from ops_pipeline.partners.clients import DEFAULT_HTTP, Clients, HttpOptions
from ops_pipeline.workspace import Workspace

log = logging.getLogger(__name__)


OUTCOMES = ("completed", "retried", "failed", "lost")


@dataclass
class Counts:
    claimed: int = 0
    completed: int = 0
    retried: int = 0  # failed an attempt, back in the queue after a backoff
    failed: int = 0  # Failed for good (no attempts left, or not retryable)
    lost: int = 0  # the lease was lost (rescued and given to another worker)
    outcomes: dict[int, str] = field(default_factory=dict)  # job id -> outcome, for one `run_once`

    def note(self, job_id: int, outcome: str) -> None:
        self.outcomes[job_id] = outcome
        setattr(self, outcome, getattr(self, outcome) + 1)

    def add(self, other: Counts) -> None:
        """Add the numbers of `other` (not its outcomes: a long-running pool keeps totals only)."""
        self.claimed += other.claimed
        for name in OUTCOMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Worker:
    """One worker identity; `run_once` claims up to `limit` jobs and runs them one after the other."""

    def __init__(
        self,
        ws: Workspace,
        worker_id: str,
        types: Iterable[str] | None = None,
        lease_seconds: float = 60.0,
        queue: JobQueue | None = None,
        http: HttpOptions = DEFAULT_HTTP,
    ):
        self.types = tuple(types) if types is not None else AUTOMATED_TYPES
        manual = [t for t in self.types if t not in AUTOMATED_TYPES]
        if manual:
            raise InvalidInput(f"types: {manual[0]!r} is not a type workers run")
        self.ws, self.worker_id, self.lease_seconds = ws, worker_id, lease_seconds
        self.queue = queue or service.queue(ws)
        self.clients = Clients(ws.settings, http)
        self.cipher = cipher(ws.settings)
        self._held: set[int] = set()
        self._held_lock = threading.Lock()

    def close(self) -> None:
        self.clients.close()

    def run_once(self, limit: int = 1) -> Counts:
        claimed = self.queue.claim(self.worker_id, limit, self.types, self.lease_seconds)
        counts = Counts(claimed=len(claimed))
        if not claimed:
            return counts
        with self._held_lock:
            self._held = {job.id for job in claimed}
        with self._heartbeat():
            for job in claimed:
                started = time.perf_counter()
                outcome = self._run(job)
                metrics.JOB_SECONDS.labels(job.type, outcome).observe(time.perf_counter() - started)
                counts.note(job.id, outcome)
                with self._held_lock:
                    self._held.discard(job.id)
        return counts

    @contextmanager
    def _heartbeat(self) -> Iterator[None]:
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.lease_seconds / 3):
                with self._held_lock:
                    held = list(self._held)
                try:
                    if held:
                        self.queue.heartbeat(held, self.worker_id, self.lease_seconds)
                except Exception as exc:  # the next beat tries again; the lease outlives a few misses
                    log.warning("worker %s: heartbeat failed: %s", self.worker_id, type(exc).__name__)

        thread = threading.Thread(target=beat, name=f"{self.worker_id}-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _run(self, job: Job) -> str:
        """Run the job's remaining actions; the name of the `Counts` field its outcome adds to."""
        with (
            logs.bind(job_id=job.id, job_type=job.type, worker=self.worker_id),
            tracing.span("job.run", {"ops.job.id": job.id, "ops.job.type": job.type}),
        ):
            return self._actions(job)

    def _actions(self, job: Job) -> str:
        step = "attributes"
        try:
            job_type = JOB_TYPES[job.type]  # workers claim only the automated types they know
            ctx = ActionContext(self.ws, job, self._open(job_type, job), dict(job.progress), self.clients)
            for action in job_type.actions:
                if action.name in ctx.results:
                    continue
                step = action.name
                log.info("job %s (%s): %s", job.id, job.type, step)
                ctx.results[step] = action.run(ctx)
                self.queue.save_progress(job.id, self.worker_id, ctx.results)
            if not self.queue.complete([job.id], self.worker_id):
                raise LeaseLost(f"job {job.id}: lease lost before completing")
            metrics.JOBS_COMPLETED.labels(job.type).inc()
            log.info("job %s (%s): completed", job.id, job.type)
            return "completed"
        except LeaseLost as exc:
            log.warning("worker %s: %s", self.worker_id, exc)
            return "lost"
        except ActionError as exc:
            return self._fail(job, f"{step}: {exc}", exc.retryable)
        except Exception as exc:  # unexpected (e.g. the lake or the DB hiccuped): another attempt may work
            log.exception("job %s (%s): %s failed", job.id, job.type, step)
            return self._fail(job, f"{step}: {type(exc).__name__}: {exc}", retryable=True)

    def _open(self, job_type: JobType, job: Job) -> BaseModel:
        """The decrypted attributes; a stored job that no longer fits its model fails for good."""
        try:
            return job_type.open(job.attributes, self.cipher)
        except ValidationError as exc:  # name the fields only: the values may be secrets
            paths = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            message = f"stored attributes do not fit the {job.type} model at {paths}"
            raise ActionError(message, retryable=False) from None
        except OpsError as exc:
            raise ActionError(str(exc), retryable=False) from None

    def _fail(self, job: Job, error: str, retryable: bool) -> str:
        try:
            after = self.queue.fail(job.id, self.worker_id, error, retryable)
        except LeaseLost as exc:
            log.warning("worker %s: %s", self.worker_id, exc)
            return "lost"
        log.warning("job %s (%s): attempt %s failed: %s", job.id, job.type, job.attempts, error)
        return "failed" if after.state == State.FAILED else "retried"


def run_pool(
    ws: Workspace,
    threads: int,
    stop_event: threading.Event,
    poll_interval: float = 1.0,
    *,
    types: Iterable[str] | None = None,
    batch: int = 1,
    lease_seconds: float = 60.0,
    housekeeping_interval: float = 30.0,
    until_idle: bool = False,
    http: HttpOptions = DEFAULT_HTTP,
    queue: JobQueue | None = None,
    name: str | None = None,
) -> Counts:
    """Run `threads` workers until `stop_event` is set (or, with `until_idle`, until no job of their types
    is Created or In Progress); every `housekeeping_interval` s the rescuer and sweeper run. Totals."""
    prefix = name or f"{socket.gethostname()}-{os.getpid()}"
    total, total_lock = Counts(), threading.Lock()
    workers = [Worker(ws, f"{prefix}-{i}", types, lease_seconds, queue, http) for i in range(1, threads + 1)]

    def work(worker: Worker) -> None:
        while not stop_event.is_set():
            try:
                counts = worker.run_once(batch)
            except Exception as exc:  # e.g. the database is restarting: wait and claim again
                log.warning("worker %s: claim failed: %s", worker.worker_id, exc)
                counts = Counts()
            with total_lock:
                total.add(counts)
            if counts.claimed:
                continue
            if until_idle and service.pending(ws, worker.types) == 0:
                return
            stop_event.wait(poll_interval)

    def housekeeping() -> None:
        last = time.monotonic()
        while not finished.wait(min(poll_interval, housekeeping_interval)) and not stop_event.is_set():
            if time.monotonic() - last < housekeeping_interval:
                continue
            last = time.monotonic()
            try:
                done = service.housekeep(ws)
            except Exception as exc:
                log.warning("housekeeping failed: %s", exc)
                continue
            if any(done.values()):
                log.info("housekeeping: %s", {k: len(v) for k, v in done.items()})

    finished = threading.Event()
    keeper = threading.Thread(target=housekeeping, name=f"{prefix}-housekeeping", daemon=True)
    keeper.start()
    running = [threading.Thread(target=work, args=(w,), name=w.worker_id) for w in workers]
    try:
        for t in running:
            t.start()
        for t in running:
            t.join()
    finally:
        finished.set()
        keeper.join()
        for w in workers:
            w.close()
    return total
