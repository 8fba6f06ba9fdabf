"""`GET /api/reports` (the built finance reports) and `GET /api/reports/{kind}/{period}.{format}` (one file),
for finance and ops."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import Field

from ops_pipeline.api.auth import Principal, require_roles
from ops_pipeline.api.deps import WorkspaceDep, run_domain
from ops_pipeline.api.errors import error_responses
from ops_pipeline.api.models import CamelModel
from ops_pipeline.reports.build import list_reports, report_file

router = APIRouter(tags=["reports"])
Reader = Annotated[Principal, Depends(require_roles("finance", "ops"))]
MEDIA = {"html": "text/html; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def file_response(path: Path) -> FileResponse:
    """A report file: HTML shown inline, XLSX as a download."""
    fmt = path.suffix[1:]
    return FileResponse(path, media_type=MEDIA[fmt], filename=path.name,
                        content_disposition_type="inline" if fmt == "html" else "attachment")


class ReportEntry(CamelModel):
    kind: str = Field(description="daily or monthly.")
    period: str = Field(description="YYYY-MM-DD (daily) or YYYY-MM (monthly).")
    format: str = Field(description="html or xlsx.")
    size: int = Field(description="Bytes.")
    built_at: datetime
    url: str


@router.get("/api/reports", summary="List the built finance reports", responses=error_responses(401, 403))
async def reports(request: Request, ws: WorkspaceDep, who: Reader) -> list[ReportEntry]:
    """Every built report file: daily, then monthly, each newest period first."""
    found = await run_domain(request, list_reports, ws)
    return [ReportEntry(kind=f.kind, period=f.period, format=f.format, size=f.size, built_at=f.built_at,
                        url=f"/api/reports/{f.kind}/{f.period}.{f.format}") for f in found]


@router.get(
    "/api/reports/{kind}/{period}.{format}",
    summary="One finance report file",
    response_class=FileResponse,
    responses={200: {"content": {m.split(";")[0]: {} for m in MEDIA.values()}},
               **error_responses(400, 401, 403, 404)},
)
async def report(request: Request, ws: WorkspaceDep, who: Reader, kind: str, period: str,
                 format: str) -> FileResponse:
    """The HTML (shown inline) or XLSX (a download) file; 400 naming `kind`, `period` or `format` when it is
    not one a report has, 404 when that report was not built."""
    return file_response(await run_domain(request, report_file, ws, kind, period, format))
