"""`POST /api/statements`: upload a bank statement file (multipart field `file`), loaded once.

The multipart body is read with the standard library's MIME parser (python-multipart, which FastAPI's
`UploadFile` needs, is not a dependency); the body guard admits multipart/form-data on this path only,
within the same size limit.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from ops_pipeline.api.auth import Principal, require_roles
from ops_pipeline.api.deps import WorkspaceDep, run_domain
from ops_pipeline.api.errors import error_responses
from ops_pipeline.api.models import CamelModel
from ops_pipeline.errors import InvalidInput
from ops_pipeline.statements.intake import load_statement

router = APIRouter(tags=["statements"])
Loader = Annotated[Principal, Depends(require_roles("ops", "finance", "internal"))]


class StatementLoad(CamelModel):
    statement_id: str = Field(description="SHA-256 of the file's bytes.")
    file_name: str
    format: str = Field(description="mt940 or camt053.")
    entries: int = Field(description="Entries loaded now (0 when the statement was loaded before).")
    already_loaded: bool


def file_part(content_type: str, body: bytes, field: str = "file") -> tuple[str, bytes]:
    """(file name, bytes) of the multipart/form-data field `field`."""
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        raise InvalidInput(f"Content-Type: must be multipart/form-data with a field named {field!r}")
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    for part in message.iter_parts() if message.is_multipart() else ():
        if part.get_param("name", header="content-disposition") == field:
            return part.get_filename() or "statement", part.get_payload(decode=True) or b""
    raise InvalidInput(f"{field}: a multipart/form-data field named {field!r} is required")


@router.post(
    "/api/statements",
    summary="Load a bank statement (MT940 or camt.053)",
    status_code=201,
    responses={200: {"model": StatementLoad, "description": "The statement was loaded before: nothing done."},
               **error_responses(400, 401, 403, 413, 415)},
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}}}}}}},
)
async def load(request: Request, response: Response, ws: WorkspaceDep, who: Loader) -> StatementLoad:
    """Load the statement's entries into `bank_statement_entries`; 201 loaded, 200 already loaded before,
    400 naming the line and field (MT940) or the element (camt.053) of a malformed file."""
    name, data = file_part(request.headers.get("content-type", ""), await request.body())
    r = await run_domain(request, load_statement, ws, data, name, who.actor)
    if r.already_loaded:
        response.status_code = 200
    return StatementLoad(statement_id=r.statement_id, file_name=r.file_name, format=r.format,
                         entries=r.entries, already_loaded=r.already_loaded)
