"""What the console's job pages show beyond the job service's own answers: a job's actions step by step,
what a person may do to it now, the Dagster runs that worked on it, its prerequisites' states, and the live
queue's count by state (one grouped query over the live table; the archive is not counted)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, union_all

from ops_pipeline.db.schema import jobs, jobs_archive
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.jobtypes import JOB_TYPES
from ops_pipeline.jobqueue.model import TRANSITIONS, State
from ops_pipeline.workspace import Workspace

PEOPLE_OPERATIONS = ("approve", "reject", "cancel", "retry")
RUN_WORKER_PREFIX = "dagster-"  # worker id prefix of a Dagster run (`dagster-<run id>`)


@dataclass(frozen=True)
class Step:
    name: str
    status: str  # done | running | failed | pending
    result: Any = None


@dataclass(frozen=True)
class JobDetail:
    view: dict[str, Any]  # service.public_view: sensitive attributes masked
    steps: list[Step]
    manual: bool
    operations: tuple[str, ...]  # of PEOPLE_OPERATIONS and "complete", allowed from its state
    dagster_runs: list[str]  # ids of the Dagster runs whose worker touched it, first first
    prerequisites: list[tuple[int, str]]  # (job id, state)


def job_detail(ws: Workspace, job_id: int) -> JobDetail:
    job = service.get_job(ws, job_id)
    job_type = JOB_TYPES.get(job.type)
    manual = job_type is not None and not job_type.automated
    operations = tuple(op for op in PEOPLE_OPERATIONS if job.state in TRANSITIONS[op][0])
    if manual and job.state == State.CREATED:
        operations += ("complete",)
    runs = [h["actor"].removeprefix(RUN_WORKER_PREFIX) for h in job.history
            if (h["actor"] or "").startswith(RUN_WORKER_PREFIX)]
    actions = [a.name for a in job_type.actions] if job_type else []
    return JobDetail(
        view=service.public_view(job),
        steps=_steps(job.progress, job.state, job.last_error, actions),
        manual=manual,
        operations=operations,
        dagster_runs=list(dict.fromkeys(runs)),
        prerequisites=_states(ws, job.depends_on or []),
    )


def _steps(progress: dict[str, Any], state: State, last_error: str | None, actions: list[str]) -> list[Step]:
    """Each action of the type: done (with its result), failed (the last error names it), running, pending."""
    steps, current = [], True
    for name in actions:
        if name in progress:
            steps.append(Step(name, "done", progress[name]))
            continue
        if current and last_error and last_error.startswith(f"{name}:"):
            steps.append(Step(name, "failed", last_error.removeprefix(f"{name}:").strip()))
        else:
            steps.append(Step(name, "running" if current and state == State.IN_PROGRESS else "pending"))
        current = False
    return steps


def _states(ws: Workspace, ids: list[int]) -> list[tuple[int, str]]:
    if not ids:
        return []
    query = union_all(*(select(t.c.id, t.c.state).where(t.c.id.in_(ids)) for t in (jobs, jobs_archive)))
    with ws.read_engine.connect() as conn:
        found = dict(conn.execute(query).all())
    return [(i, found.get(i, "unknown")) for i in ids]


def state_counts(ws: Workspace) -> list[tuple[str, int]]:
    """Live jobs by state, in the states' order (finished jobs are archived: not counted here)."""
    counts = service.queue(ws).counts()
    return [(s.value, counts[s.value]) for s in State if counts.get(s.value)]
