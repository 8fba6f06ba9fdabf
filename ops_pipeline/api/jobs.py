"""The ops job queue over REST: create, queue, one job with its history, types, and the people's actions.

Roles: `ops` and `internal` create, cancel and retry; `ops` approves, rejects and completes manual jobs;
`analyst` (and the creators) read. Bodies take snake_case (as documented) or camelCase; answers are camelCase.
Attribute problems are the job type's validation and answer 400 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import Field, WithJsonSchema

from ops_pipeline.api.auth import require_roles
from ops_pipeline.api.deps import WorkspaceDep
from ops_pipeline.api.errors import error_responses
from ops_pipeline.api.models import Body, Cursor, IdPath, Timestamp, camel, choices, text
from ops_pipeline.auth import Principal
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.jobtypes import JOB_TYPES
from ops_pipeline.jobqueue.model import PRIORITIES, State

router = APIRouter(prefix="/api/job", tags=["jobs"])
Creator = Annotated[Principal, Depends(require_roles("ops", "internal"))]
Approver = Annotated[Principal, Depends(require_roles("ops"))]
Reader = Annotated[Principal, Depends(require_roles("ops", "internal", "analyst"))]
# Checked by the service (400 naming dependsOn), so that a bad id is never a 422 or an overflow.
JobId = Annotated[Any, WithJsonSchema({"type": "integer", "minimum": 1, "maximum": service.MAX_JOB_ID})]
ACTOR_KINDS = {"internal": "service"}  # every other role is a person
WHY = 2000  # characters of a reason or a note


class CreateJob(Body):
    type: str = text(64, "Job type id; see GET /api/job/types.", json_schema_extra=choices(JOB_TYPES))
    attributes: dict[str, Any] = Field(default_factory=dict, description="Validated by the type's schema.")
    priority: str = text(16, "High, Medium or Low.", default="Medium", json_schema_extra=choices(PRIORITIES))
    expires_at: Timestamp | None = Field(None, description="Never run after this time.")
    idempotency_key: str | None = text(200, "A live job with this key is returned, not duplicated.",
                                       default=None)
    depends_on: list[JobId] | None = Field(
        None,
        max_length=50,
        description="Ids of existing jobs that must all be Completed before this one runs; if one ends "
        "otherwise, this job fails with its reason.",
    )


class Reason(Body):
    reason: str | None = Field(None, max_length=WHY)


class Note(Body):
    note: str | None = Field(None, max_length=WHY)


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
    state: Annotated[str | None, Query(max_length=24, json_schema_extra=choices(State))] = None,
    type: Annotated[str | None, Query(max_length=64, json_schema_extra=choices(JOB_TYPES))] = None,
    priority: Annotated[str | None, Query(max_length=16, json_schema_extra=choices(PRIORITIES))] = None,
    created_by: Annotated[str | None, Query(alias="createdBy", max_length=128)] = None,
    created_from: Annotated[Timestamp | None, Query(alias="createdFrom")] = None,
    created_to: Annotated[Timestamp | None, Query(alias="createdTo")] = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """Filter by state, type, priority, creator and creation time; page with `cursor`."""
    page = service.list_jobs(
        ws,
        state=state,
        type=type,
        priority=priority,
        created_by=created_by,
        created_from=created_from,
        created_to=created_to,
        after_id=cursor,
        limit=limit,
    )
    return {
        "jobs": [view(j) for j in page.jobs],
        "nextCursor": str(page.next_after_id) if page.next_after_id else None,
    }


@router.get("/types", summary="Job types with the JSON Schema of their attributes",
            responses=error_responses(401, 403))
def job_types(_: Reader) -> list[dict[str, Any]]:
    return camel(service.job_types_catalog())


@router.get("/{job_id:int}", summary="One job with its history", responses=error_responses(401, 403, 404))
def get_job(job_id: IdPath, ws: WorkspaceDep, _: Reader) -> dict[str, Any]:
    return view(service.get_job(ws, job_id))


@router.post(
    "/{job_id:int}/approve", summary="Approve (four eyes)", responses=error_responses(401, 403, 404, 409)
)
def approve(job_id: IdPath, ws: WorkspaceDep, who: Approver) -> dict[str, Any]:
    return view(service.approve_job(ws, job_id, who.sub))


@router.post(
    "/{job_id:int}/reject", summary="Reject with a reason", responses=error_responses(400, 401, 403, 404, 409)
)
def reject(job_id: IdPath, body: Reason, ws: WorkspaceDep, who: Approver) -> dict[str, Any]:
    return view(service.reject_job(ws, job_id, who.sub, body.reason or ""))


@router.post(
    "/{job_id:int}/cancel",
    summary="Cancel a job that has not started",
    responses=error_responses(401, 403, 404, 409),
)
def cancel(job_id: IdPath, ws: WorkspaceDep, who: Creator, body: Reason | None = None) -> dict[str, Any]:
    return view(service.cancel_job(ws, job_id, who.sub, body.reason if body else None))


@router.post(
    "/{job_id:int}/retry", summary="Retry a Failed job", responses=error_responses(401, 403, 404, 409)
)
def retry(job_id: IdPath, ws: WorkspaceDep, who: Creator) -> dict[str, Any]:
    return view(service.retry_job(ws, job_id, who.sub))


@router.post(
    "/{job_id:int}/complete", summary="Complete a manual job", responses=error_responses(401, 403, 404, 409)
)
def complete(job_id: IdPath, ws: WorkspaceDep, who: Approver, body: Note | None = None) -> dict[str, Any]:
    return view(service.complete_manual(ws, job_id, who.sub, body.note if body else None))
