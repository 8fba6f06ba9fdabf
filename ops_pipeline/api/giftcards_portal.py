"""Principal portal reconciliation over REST under `/api/giftcards`: the export mapping of each principal,
export uploads (multipart field `file`), and the reconciliation of a date (its run, rows per status, open
breaks, quarantined lines). `ops` writes; `ops`, `finance` and `analyst` read. Answers are camelCase."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from ops_pipeline.api.deps import WorkspaceDep, run_domain
from ops_pipeline.api.errors import error_responses
from ops_pipeline.api.giftcards import (
    READ_ERRORS,
    WRITE_ERRORS,
    ExpectedVersion,
    Key,
    Limit,
    Reader,
    RecordBody,
    TextCursor,
    Writer,
    snake,
)
from ops_pipeline.api.models import Body, Day, camel, text
from ops_pipeline.api.statements import file_part
from ops_pipeline.giftcards import portal_exports, records
from ops_pipeline.giftcards.portal_mapping import MAPPINGS
from ops_pipeline.recon import breaks, portal

router = APIRouter(prefix="/api/giftcards", tags=["giftcards"])
DatePath = Annotated[Day, Path(description="The business date (YYYY-MM-DD).")]
UPLOAD_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 415)


@router.post("/portal-mappings", status_code=201, summary="Create a principal's portal export mapping",
             responses=WRITE_ERRORS)
def create_mapping(body: RecordBody, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    return camel(records.create(ws, MAPPINGS, snake(body), who.sub))


@router.get("/portal-mappings", summary="Portal export mappings by principal", responses=READ_ERRORS)
def list_mappings(ws: WorkspaceDep, _: Reader, cursor: TextCursor = None,
                  limit: Limit = 50) -> dict[str, Any]:
    found, next_after = records.page(ws, MAPPINGS, after=cursor, limit=limit)
    return {"mappings": camel(found), "nextCursor": next_after}


@router.get("/portal-mappings/{key}", summary="A principal's portal export mapping", responses=READ_ERRORS)
def get_mapping(key: Key, ws: WorkspaceDep, _: Reader) -> dict[str, Any]:
    return camel(records.get(ws, MAPPINGS, key))


@router.patch("/portal-mappings/{key}", summary="Change a portal export mapping", responses=WRITE_ERRORS)
def update_mapping(key: Key, body: RecordBody, ws: WorkspaceDep, who: Writer,
                   expected_version: ExpectedVersion = None) -> dict[str, Any]:
    return camel(records.update_record(ws, MAPPINGS, key, snake(body), who.sub,
                                       expected_version=expected_version))


@router.post(
    "/portal-exports/{key}", status_code=201, summary="Upload a principal's portal export (CSV or XLSX)",
    responses={200: {"description": "The export was loaded before: nothing done."}, **UPLOAD_ERRORS},
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}}}}}}},
)
async def upload_export(request: Request, response: Response, key: Key, ws: WorkspaceDep, who: Writer,
                        export_date: Annotated[Day | None, Query(alias="exportDate")] = None
                        ) -> dict[str, Any]:
    """Parse with the principal's mapping: 201 loaded (lines that do not parse quarantined with their
    reasons), 200 loaded before; the export date defaults to the date in the file name, else today."""
    name, data = file_part(request.headers.get("content-type", ""), await request.body())
    loaded = await run_domain(request, portal_exports.load_export, ws, key, data, name, who.sub, export_date)
    if loaded.already_loaded:
        response.status_code = 200
    return camel({**loaded.__dict__, "export_date": loaded.export_date.isoformat()})


@router.get("/portal-quarantine", summary="Export lines that did not parse", responses=READ_ERRORS)
def list_quarantine(ws: WorkspaceDep, _: Reader,
                    principal_id: Annotated[str | None, Query(alias="principalId", max_length=64)] = None,
                    export_date: Annotated[Day | None, Query(alias="exportDate")] = None) -> dict[str, Any]:
    return {"lines": camel(portal_exports.quarantined(ws, principal_id, export_date))}


class RunPortalRecon(Body):
    principal_id: str | None = text(64, "Require this principal to have an export of the date.", default=None)


@router.post("/portal-recon/{business_date}/run", summary="Reconcile the portal exports of a date",
             responses=WRITE_ERRORS)
def run_recon(business_date: DatePath, body: RunPortalRecon, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    summary = portal.run(ws, business_date, actor=who.sub, principal_id=body.principal_id)
    return camel({"run_id": summary.run_id, "business_date": business_date.isoformat(),
                  "counts": summary.counts})


@router.get("/portal-recon/{business_date}", summary="The portal reconciliation of a date",
            responses=READ_ERRORS)
def get_recon(business_date: DatePath, ws: WorkspaceDep, _: Reader) -> dict[str, Any]:
    """Rows of the latest run per status and currency (minor units), its open breaks, quarantined lines."""
    totals = [{"status": s, "currency": c, "rows": n, "ours_minor": o, "portal_minor": p}
              for s, c, n, o, p in portal.status_totals(ws, business_date, business_date)]
    found = breaks.open_breaks(ws, recon=portal.NAME, business_date=business_date)
    return camel({"business_date": business_date.isoformat(), "statuses": totals,
                  "breaks": [{**b, "business_date": b["business_date"].isoformat(),
                              "first_seen_at": b["first_seen_at"].isoformat()} for b in found],
                  "quarantined": len(portal_exports.quarantined(ws, export_date=business_date))})
