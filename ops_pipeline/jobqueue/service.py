"""The job service: the one code path the REST API, the CLI, Dagster and the rules use.

Every function takes the workspace first and raises the domain errors of `ops_pipeline.errors`
(InvalidInput -> 400 naming the field, NotFound -> 404, Conflict -> 409, FourEyes -> 403), so adapters
only map them. Attributes are validated by the job type's model, and sensitive ones (UPI VPAs, bank
details, contact e-mails and phones, addresses) are encrypted before they reach the database;
`public_view` shows them masked. A job may wait for others (`depends_on`): see `queue`.

    job, created = create_job(ws, type="manual", attributes={"title": "Call the bank"}, actor="alice")
    later, _ = create_job(ws, type="manual", attributes={...}, depends_on=[job.id], actor="alice")
    page = list_jobs(ws, state="Created", limit=20)         # page.jobs, page.next_after_id (cursor)
    approve_job(ws, job.id, actor="bob")                    # four eyes: not the creator
    public_view(get_job(ws, job.id))                        # plain dict, masked, with history
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ops_pipeline.crypto import cipher
from ops_pipeline.errors import Conflict, InvalidInput
from ops_pipeline.jobqueue.jobtypes import AUTOMATED_TYPES, JOB_TYPES, get_type, job_types_catalog
from ops_pipeline.jobqueue.model import CREATOR_KINDS, MAX_PREREQUISITES, Job, NewJob
from ops_pipeline.jobqueue.queue import Filters, JobQueue
from ops_pipeline.observability import metrics
from ops_pipeline.workspace import Workspace

__all__ = [
    "Page",
    "approve_job",
    "cancel_job",
    "claimable",
    "complete_manual",
    "create_job",
    "get_job",
    "housekeep",
    "job_types_catalog",
    "list_jobs",
    "pending",
    "public_view",
    "reject_job",
    "retry_job",
]

log = logging.getLogger(__name__)

MAX_PAGE = 500
MAX_JOB_ID = 2**63 - 1


def queue(ws: Workspace) -> JobQueue:
    """The queue over the workspace's database (cheap to make: it holds no connection)."""
    return JobQueue(ws.engine)


def _text(field: str, value: Any, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field}: is required")
    if len(value) > max_length:
        raise InvalidInput(f"{field}: is longer than {max_length} characters")
    return value


def _prerequisites(value: Any) -> tuple[int, ...]:
    """Job ids, distinct and at most MAX_PREREQUISITES; whether they exist is the queue's to check."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or len(value) > MAX_PREREQUISITES:
        raise InvalidInput(f"dependsOn: must be a list of at most {MAX_PREREQUISITES} job ids")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= MAX_JOB_ID:
            raise InvalidInput(f"dependsOn: {item!r} is not a job id")
    if len(set(value)) != len(value):
        raise InvalidInput("dependsOn: a job id is listed twice")
    return tuple(value)


# -- creating ------------------------------------------------------------------------------------------


def create_job(
    ws: Workspace,
    *,
    type: str,
    attributes: Any,
    priority: str = "Medium",
    expires_at: datetime | None = None,
    idempotency_key: str | None = None,
    depends_on: Sequence[int] | None = None,
    actor: str,
    actor_kind: str = "person",
) -> tuple[Job, bool]:
    """Validate and enqueue a job; `created` is False when a live job holds `idempotency_key` (that job).

    With `depends_on` (existing job ids), the job runs only once those have all Completed, and fails if one
    of them ends otherwise."""
    job_type = get_type(type)
    _text("actor", actor, 128)
    if actor_kind not in CREATOR_KINDS:
        raise InvalidInput(f"actor_kind: {actor_kind!r} is not one of {', '.join(CREATOR_KINDS)}")
    if idempotency_key is not None:
        _text("idempotency_key", idempotency_key, 200)
    if expires_at is not None and expires_at.tzinfo is None:
        raise InvalidInput(f"expires_at: {expires_at.isoformat()} has no time zone")
    prerequisites = _prerequisites(depends_on)
    model = job_type.validate(attributes)
    return queue(ws).enqueue(
        NewJob(
            type=job_type.name,
            attributes=job_type.seal(model, cipher(ws.settings)),
            created_by=actor,
            created_by_kind=actor_kind,
            priority=priority,
            expires_at=expires_at,
            idempotency_key=idempotency_key,
            needs_approval=job_type.needs_approval,
            max_attempts=job_type.max_attempts,
            depends_on=prerequisites,
        )
    )


# -- reading -------------------------------------------------------------------------------------------


def get_job(ws: Workspace, job_id: int) -> Job:
    """A job, live or archived, with its history; NotFound otherwise."""
    return queue(ws).get(job_id)


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_after_id: int | None  # pass as `after_id` for the next page; None on the last page


def list_jobs(
    ws: Workspace,
    *,
    state: str | None = None,
    type: str | None = None,
    priority: str | None = None,
    created_by: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> Page:
    """Jobs matching the filters, newest first, in pages of `limit` (1..500) after the cursor `after_id`."""
    if type is not None:
        get_type(type)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit: {limit} is not between 1 and {MAX_PAGE}")
    filters = Filters(state, type, priority, created_by, created_from, created_to)
    found = queue(ws).list(filters, after_id=after_id, limit=limit)
    return Page(found, found[-1].id if len(found) == limit else None)


def claimable(ws: Workspace, types: Iterable[str] = AUTOMATED_TYPES) -> int:
    """How many jobs workers could claim now (manual jobs are never claimed by workers)."""
    return queue(ws).claimable(types)


def pending(ws: Workspace, types: Iterable[str] = AUTOMATED_TYPES) -> int:
    """Live jobs of `types` still to run: Created (also those waiting out a retry backoff) or In Progress."""
    return queue(ws).pending(types)


# -- people --------------------------------------------------------------------------------------------


def approve_job(ws: Workspace, job_id: int, actor: str) -> Job:
    """Release an Awaiting Approval job to the queue; refused (FourEyes) when `actor` created it."""
    return queue(ws).approve(job_id, _text("actor", actor, 128))


def reject_job(ws: Workspace, job_id: int, actor: str, reason: str) -> Job:
    """Refuse an Awaiting Approval job: it ends Failed with the reason."""
    return queue(ws).reject(job_id, _text("actor", actor, 128), reason)


def cancel_job(ws: Workspace, job_id: int, actor: str, reason: str | None = None) -> Job:
    """Withdraw a job that has not started (Created or Awaiting Approval): it ends Failed."""
    return queue(ws).cancel(job_id, _text("actor", actor, 128), reason)


def retry_job(ws: Workspace, job_id: int, actor: str) -> Job:
    """Bring a Failed job back to the queue; actions that had succeeded are not run again."""
    return queue(ws).retry(job_id, _text("actor", actor, 128))


def complete_manual(ws: Workspace, job_id: int, actor: str, note: str | None = None) -> Job:
    """A person finished a manual job: it is taken, then Completed, with the note kept in its progress."""
    _text("actor", actor, 128)
    q = queue(ws)
    job = q.get(job_id)
    if get_type(job.type).automated:
        raise Conflict(f"job {job_id}: is a {job.type} job; workers complete it", code="NOT_MANUAL")
    q.take(job_id, actor)
    q.save_progress(job_id, actor, {"completed_by": actor, "note": note})
    if q.complete([job_id], actor):
        metrics.JOBS_COMPLETED.labels(job.type).inc()
    return q.get(job_id)


def housekeep(ws: Workspace) -> dict[str, list[int]]:
    """The rescuer (jobs whose worker died), the expiry sweeper and the dependency check, once (`jobs
    sweep`, the schedule). Dependents the check fails are counted with the failed jobs."""
    q = queue(ws)
    rescued, failed = q.rescue()
    expired = q.sweep_expired()
    released, orphaned = q.settle_dependencies()
    if released:  # finishing a prerequisite releases its dependents: this is the safety net at work
        log.warning("housekeeping: released jobs %s whose prerequisites had all completed", released)
    return {"rescued": rescued, "failed": failed + orphaned, "expired": expired}


# -- views ---------------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def public_view(job: Job) -> dict[str, Any]:
    """The job as a JSON-ready dict for the API and the CLI: sensitive attributes masked, with history."""
    job_type = JOB_TYPES.get(job.type)
    return {
        "id": job.id,
        "type": job.type,
        "state": job.state.value,
        "priority": job.priority,
        "attributes": job_type.masked(job.attributes) if job_type else job.attributes,
        "expires_at": _iso(job.expires_at),
        "created_by": job.created_by,
        "created_by_kind": job.created_by_kind,
        "idempotency_key": job.idempotency_key,
        "depends_on": job.depends_on or [],
        "waiting_for": job.waiting if not job.archived else 0,
        "needs_approval": bool(job_type and job_type.needs_approval),
        "approved_by": job.approved_by,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "run_at": _iso(job.run_at),
        "lease_owner": job.lease_owner,
        "lease_expires_at": _iso(job.lease_expires_at),
        "progress": job.progress,
        "last_error": job.last_error,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "archived": job.archived,
        "history": [{**h, "at": _iso(h["at"])} for h in job.history],
    }
