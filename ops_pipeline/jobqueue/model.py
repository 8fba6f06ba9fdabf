"""Jobs, their states and the transitions allowed between them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ops_pipeline.errors import Conflict, InvalidInput


class State(StrEnum):
    CREATED = "Created"
    AWAITING_APPROVAL = "Awaiting Approval"
    IN_PROGRESS = "In Progress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    EXPIRED = "Expired"


FINISHED = frozenset({State.COMPLETED, State.FAILED, State.EXPIRED})
LIVE = frozenset(State) - FINISHED
NOT_STARTED = (State.CREATED.value, State.AWAITING_APPROVAL.value)  # what a failed prerequisite fails
MAX_PREREQUISITES = 50

# Priority names and their stored rank: claims go in ascending rank (High first), then oldest first.
PRIORITIES = {"High": 1, "Medium": 2, "Low": 3}
PRIORITY_NAMES = {rank: name for name, rank in PRIORITIES.items()}
CREATOR_KINDS = ("person", "service", "rule")

# operation -> (states it may start from, state it leads to); anything else is refused.
TRANSITIONS: dict[str, tuple[frozenset[State], State]] = {
    "approve": (frozenset({State.AWAITING_APPROVAL}), State.CREATED),
    "reject": (frozenset({State.AWAITING_APPROVAL}), State.FAILED),
    "cancel": (frozenset({State.CREATED, State.AWAITING_APPROVAL}), State.FAILED),
    "expire": (frozenset({State.CREATED, State.AWAITING_APPROVAL}), State.EXPIRED),
    "claim": (frozenset({State.CREATED}), State.IN_PROGRESS),
    "complete": (frozenset({State.IN_PROGRESS}), State.COMPLETED),
    "requeue": (frozenset({State.IN_PROGRESS}), State.CREATED),
    "fail": (frozenset({State.IN_PROGRESS}), State.FAILED),
    "retry": (frozenset({State.FAILED}), State.CREATED),
}


def check_transition(job_id: int, current: State, operation: str) -> State:
    """The state `operation` leads to from `current`; a Conflict naming both when it is not allowed."""
    sources, target = TRANSITIONS[operation]
    if current not in sources:
        raise Conflict(f"job {job_id}: cannot {operation}: state is {current}", code="ILLEGAL_TRANSITION")
    return target


def priority_rank(name: str) -> int:
    try:
        return PRIORITIES[name]
    except KeyError:
        raise InvalidInput(f"priority: {name!r} is not one of {', '.join(PRIORITIES)}") from None


@dataclass(frozen=True)
class NewJob:
    """What a person, service or rule asks for; attributes already validated by the job type."""

    type: str
    attributes: dict[str, Any]
    created_by: str
    created_by_kind: str = "person"
    priority: str = "Medium"
    expires_at: datetime | None = None
    idempotency_key: str | None = None
    needs_approval: bool = False
    max_attempts: int = 3
    depends_on: tuple[int, ...] = ()  # prerequisite job ids: not claimable before they all Completed


@dataclass(frozen=True)
class Job:
    id: int
    type: str
    attributes: dict[str, Any]
    priority: str
    state: State
    expires_at: datetime | None
    created_by: str
    created_by_kind: str
    idempotency_key: str | None
    attempts: int
    max_attempts: int
    run_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    progress: dict[str, Any]
    last_error: str | None
    approved_by: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    depends_on: list[int] | None  # prerequisite job ids
    waiting: int  # how many of them have not Completed yet (claimable only at 0)
    archived: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_row(cls, row, archived: bool = False) -> Job:
        m = dict(row._mapping)
        m.pop("archived_at", None)
        m["priority"] = PRIORITY_NAMES[m["priority"]]
        m["state"] = State(m["state"])
        return cls(**m, archived=archived)
