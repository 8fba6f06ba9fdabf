"""Jobs: the queue with filters and a by-state count, a job's page (masked attributes, its actions step by
step, history, errors, prerequisites) with the people's actions, and a create form per job type.

Reading: ops and analysts, as `GET /api/job/queue` admits; finance is refused (403). Creating and acting:
ops only. Every action is the job service's own function, whose history row names the console user; the
service enforces the rules (four eyes: the creator's approval is refused with its message).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ops_pipeline.api.jobs import WHY
from ops_pipeline.api.models import Cursor, IdPath
from ops_pipeline.console import jobform
from ops_pipeline.console.jobs import job_detail, state_counts
from ops_pipeline.console.sessions import Session
from ops_pipeline.console.web import (
    Acting,
    Refused,
    Viewer,
    done,
    page_router,
    readers,
    render,
    run_domain,
    url,
)
from ops_pipeline.errors import Conflict, InvalidInput
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.jobtypes import get_type
from ops_pipeline.jobqueue.model import PRIORITIES, State

router = page_router()
Reader = Annotated[Session, Depends(readers("jobs", "ops", "analyst"))]
CATALOG = {t["type"]: t for t in service.job_types_catalog()}
FORMS = {name: jobform.form_fields(t["attributes_schema"]) for name, t in CATALOG.items()}
PAGE = 50
Filter = Annotated[str, Query(max_length=128)]



def _why(form, name: str) -> str | None:
    """A reason or a note: optional here (the service says when one is required), at most WHY characters."""
    text = form.get(name)
    if len(text) > WHY:
        raise InvalidInput(f"{name}: is longer than {WHY} characters")
    return text or None


def _creator(session) -> None:
    if not session.can_act:
        raise Refused(f"role: {session.role!r} reads the console; only ops create jobs")


@router.get("/jobs")
async def jobs_page(request: Request, session: Reader, state: Filter = "", type: Filter = "",
                    priority: Filter = "", created_by: Filter = "", after: Cursor = None) -> HTMLResponse:
    ws = request.app.state.ws
    filters = {"state": state, "type": type, "priority": priority, "created_by": created_by}
    page = await run_domain(request, partial(service.list_jobs, ws, after_id=after, limit=PAGE,
                                             **{k: v or None for k, v in filters.items()}))
    counts = await run_domain(request, state_counts, ws)
    next_url = url("/jobs", **filters, after=page.next_after_id) if page.next_after_id else None
    views = [service.public_view(j) for j in page.jobs]
    return render(request, "jobs/list.html", jobs=views, filters=filters, counts=counts, next_url=next_url,
                  states=[s.value for s in State], types=list(CATALOG), priorities=list(PRIORITIES))


@router.get("/jobs/new")
async def type_picker(request: Request, session: Viewer) -> HTMLResponse:
    _creator(session)
    return render(request, "jobs/types.html", catalog=CATALOG.values())


@router.get("/jobs/new/{type_name}")
async def create_form(request: Request, session: Viewer, type_name: str,
                      example: bool = False) -> HTMLResponse:
    """An empty form (the schema's defaults), or with `?example=1` the type's example filled in."""
    _creator(session)
    name = get_type(type_name).name
    values = jobform.values_of(FORMS[name], CATALOG[name]["example"] if example else None)
    return _form(request, name, {"priority": "Medium", **values}, {})


def _form(request: Request, name: str, values: dict[str, str], errors: dict[str, str]) -> HTMLResponse:
    return render(request, "jobs/new.html", 400 if errors else 200, kind=CATALOG[name], fields=FORMS[name],
                  values=values, errors=errors, priorities=list(PRIORITIES))


@router.post("/jobs/new/{type_name}")
async def create(request: Request, type_name: str, form: Acting) -> Response:
    name = get_type(type_name).name
    attributes, errors = jobform.attributes(FORMS[name], form.fields)
    try:
        expires_at = jobform.expires_at(form.get("expires_at"))
    except ValueError as exc:
        errors["expires_at"] = str(exc)
    if errors:
        return _form(request, name, form.fields, errors)
    create_job = partial(
        service.create_job, request.app.state.ws, type=name, attributes=attributes,
        priority=form.get("priority") or "Medium", expires_at=expires_at,
        idempotency_key=form.get("idempotency_key") or None,
        depends_on=jobform.depends_on(form.get("depends_on")), actor=form.actor,
    )
    try:
        job, created = await run_domain(request, create_job)
    except (InvalidInput, Conflict) as exc:
        return _form(request, name, form.fields, jobform.field_errors(str(exc), FORMS[name]))
    message = (f"Job {job.id} created: {job.state}" if created
               else f"Job {job.id} already holds this idempotency key: nothing new was created")
    return await done(request, message, f"/jobs/{job.id}")


@router.get("/jobs/{job_id:int}")
async def job_page(request: Request, session: Reader, job_id: IdPath) -> HTMLResponse:
    detail = await run_domain(request, job_detail, request.app.state.ws, job_id)
    return render(request, "jobs/detail.html", d=detail, job=detail.view)


@router.post("/jobs/{job_id:int}/approve")
async def approve(request: Request, job_id: IdPath, form: Acting) -> RedirectResponse:
    job = await run_domain(request, service.approve_job, request.app.state.ws, job_id, form.actor)
    return await done(request, f"Job {job_id} approved: {job.state}", f"/jobs/{job_id}")


@router.post("/jobs/{job_id:int}/reject")
async def reject(request: Request, job_id: IdPath, form: Acting) -> RedirectResponse:
    reason = _why(form, "reason") or ""
    await run_domain(request, service.reject_job, request.app.state.ws, job_id, form.actor, reason)
    return await done(request, f"Job {job_id} rejected", f"/jobs/{job_id}")


@router.post("/jobs/{job_id:int}/cancel")
async def cancel(request: Request, job_id: IdPath, form: Acting) -> RedirectResponse:
    reason = _why(form, "reason")
    await run_domain(request, service.cancel_job, request.app.state.ws, job_id, form.actor, reason)
    return await done(request, f"Job {job_id} cancelled", f"/jobs/{job_id}")


@router.post("/jobs/{job_id:int}/retry")
async def retry(request: Request, job_id: IdPath, form: Acting) -> RedirectResponse:
    await run_domain(request, service.retry_job, request.app.state.ws, job_id, form.actor)
    return await done(request, f"Job {job_id} is back in the queue", f"/jobs/{job_id}")


@router.post("/jobs/{job_id:int}/complete")
async def complete(request: Request, job_id: IdPath, form: Acting) -> RedirectResponse:
    note = _why(form, "note")
    await run_domain(request, service.complete_manual, request.app.state.ws, job_id, form.actor, note)
    return await done(request, f"Job {job_id} completed", f"/jobs/{job_id}")
