"""The ops job queue over REST: create, queue, one job with its history, types, and the people's actions.

Roles: `ops` and `internal` create, cancel and retry; `ops` approves, rejects and completes manual jobs;
`analyst` (and the creators) read. Bodies take snake_case (as documented) or camelCase; answers are camelCase.
Attribute problems are the job type's validation and answer 400 naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from ops_pipeline.api.auth import require_roles
from ops_pipeline.api.deps import WorkspaceDep
from ops_pipeline.api.errors import error_responses
from ops_pipeline.auth import Principal
from ops_pipeline.errors import InvalidInput
from ops_pipeline.jobqueue import service

router = APIRouter(prefix="/api/job", tags=["jobs"])
Creator = Annotated[Principal, Depends(require_roles("ops", "internal"))]
Approver = Annotated[Principal, Depends(require_roles("ops"))]
Reader = Annotated[Principal, Depends(require_roles("ops", "internal", "analyst"))]
# Checked by the service (400 naming dependsOn), so that a bad id is never a 422 or an overflow.
JobId = Annotated[Any, WithJsonSchema({"type": "integer", "minimum": 1, "maximum": service.MAX_JOB_ID})]
ACTOR_KINDS = {"internal": "service"}  # every other role is a person
OPAQUE = {"attributes", "progress", "attributes_schema", "example"}  # keys inside are the job type's own


class Body(BaseModel):
    """A request body: camelCase or snake_case keys; an unknown key is refused, never dropped."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              extra="forbid")


class CreateJob(Body):
    type: str = Field(description="Job type id; see GET /api/job/types.")
    attributes: dict[str, Any] = Field(default_factory=dict, description="Validated by the type's schema.")
    priority: str = Field("Medium", description="High, Medium or Low.")
    expires_at: datetime | None = Field(None, description="Never run after this time (ISO 8601 with offset).")
    idempotency_key: str | None = Field(
        None, description="A live job with this key is returned, not duplicated."
    )
    depends_on: list[JobId] | None = Field(
        None,
        max_length=50,
        description="Ids of existing jobs that must all be Completed before this one runs; if one ends "
        "otherwise, this job fails with its reason.",
    )


class Reason(Body):
    reason: str | None = None


class Note(Body):
    note: str | None = None


def camel(value: Any) -> Any:
    """snake_case keys to camelCase, recursively; attributes and their schema keep the type's own keys."""
    if isinstance(value, list):
        return [camel(v) for v in value]
    if isinstance(value, dict):
        return {to_camel(k): (v if k in OPAQUE else camel(v)) for k, v in value.items()}
    return value


def view(job) -> dict[str, Any]:
    return camel(service.public_view(job))


@router.post(
    "/create",
    status_code=201,
    summary="Create a job",
    responses={
        200: {"description": "A live job already holds this idempotency key: that job."},
        **error_responses(400, 401, 403, 409),
    },
)
def create(body: CreateJob, ws: WorkspaceDep, who: Creator):
    job, created = service.create_job(
        ws,
        type=body.type,
        attributes=body.attributes,
        priority=body.priority,
        expires_at=body.expires_at,
        idempotency_key=body.idempotency_key,
        depends_on=body.depends_on,
        actor=who.sub,
        actor_kind=ACTOR_KINDS.get(who.role, "person"),
    )
    return JSONResponse(view(job), status_code=201 if created else 200)


@router.get("/queue", summary="Jobs, newest first", responses=error_responses(400, 401, 403))
def job_queue(
    ws: WorkspaceDep,
    _: Reader,
    state: str | None = None,
    type: str | None = None,
    priority: str | None = None,
    created_by: Annotated[str | None, Query(alias="createdBy")] = None,
    created_from: Annotated[datetime | None, Query(alias="createdFrom")] = None,
    created_to: Annotated[datetime | None, Query(alias="createdTo")] = None,
    cursor: Annotated[str | None, Query(description="nextCursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """Filter by state, type, priority, creator and creation time; page with `cursor`."""
    if cursor is not None and not cursor.isdigit():
        raise InvalidInput(f"cursor: {cursor!r} is not a cursor from a previous page")
    page = service.list_jobs(
        ws,
        state=state,
        type=type,
        priority=priority,
        created_by=created_by,
        created_from=created_from,
        created_to=created_to,
        after_id=int(cursor) if cursor else None,
        limit=limit,
    )
    return {
        "jobs": [view(j) for j in page.jobs],
        "nextCursor": str(page.next_after_id) if page.next_after_id else None,
    }


@router.get("/types", summary="Job types with the JSON Schema of their attributes")
def job_types(_: Reader) -> list[dict[str, Any]]:
    return camel(service.job_types_catalog())


@router.get("/{job_id}", summary="One job with its history", responses=error_responses(401, 403, 404))
def get_job(job_id: int, ws: WorkspaceDep, _: Reader) -> dict[str, Any]:
    return view(service.get_job(ws, job_id))


@router.post(
    "/{job_id}/approve", summary="Approve (four eyes)", responses=error_responses(401, 403, 404, 409)
)
def approve(job_id: int, ws: WorkspaceDep, who: Approver) -> dict[str, Any]:
    return view(service.approve_job(ws, job_id, who.sub))


@router.post(
    "/{job_id}/reject", summary="Reject with a reason", responses=error_responses(400, 401, 403, 404, 409)
)
def reject(job_id: int, body: Reason, ws: WorkspaceDep, who: Approver) -> dict[str, Any]:
    return view(service.reject_job(ws, job_id, who.sub, body.reason or ""))


@router.post(
    "/{job_id}/cancel",
    summary="Cancel a job that has not started",
    responses=error_responses(401, 403, 404, 409),
)
def cancel(job_id: int, ws: WorkspaceDep, who: Creator, body: Reason | None = None) -> dict[str, Any]:
    return view(service.cancel_job(ws, job_id, who.sub, body.reason if body else None))


@router.post("/{job_id}/retry", summary="Retry a Failed job", responses=error_responses(401, 403, 404, 409))
def retry(job_id: int, ws: WorkspaceDep, who: Creator) -> dict[str, Any]:
    return view(service.retry_job(ws, job_id, who.sub))


@router.post(
    "/{job_id}/complete", summary="Complete a manual job", responses=error_responses(401, 403, 404, 409)
)
def complete(job_id: int, ws: WorkspaceDep, who: Approver, body: Note | None = None) -> dict[str, Any]:
    return view(service.complete_manual(ws, job_id, who.sub, body.note if body else None))
