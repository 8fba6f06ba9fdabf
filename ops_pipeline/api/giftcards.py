"""The gift-card business's records over REST under `/api/giftcards`: `ops` writes; `ops`, `finance` and
`analyst` read. Answers are camelCase, with UPI VPAs, bank details and contacts masked.

Request keys are camelCase (or snake_case) at every level; a record is validated whole, so a 400 names
each field at fault (`principal.upiVpas[0]` is reported as `principal.upi_vpas[0]`). Lists page by key
with `cursor` (the previous page's `nextCursor`). An update may require the version it read
(`expectedVersion`, 409 when another change came first).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import Field, StrictInt
from pydantic.alias_generators import to_snake

from ops_pipeline.api.auth import require_roles
from ops_pipeline.api.deps import WorkspaceDep
from ops_pipeline.api.errors import error_responses
from ops_pipeline.api.models import MAX_ID, Day, IdPath, camel, text
from ops_pipeline.api.models import Body as BodyModel
from ops_pipeline.auth import Principal
from ops_pipeline.giftcards import assignments, kinds, records, vouchers
from ops_pipeline.giftcards.model import RESTRICTION_STATES, VOUCHER_STATUSES

router = APIRouter(prefix="/api/giftcards", tags=["giftcards"])
Writer = Annotated[Principal, Depends(require_roles("ops"))]
Reader = Annotated[Principal, Depends(require_roles("ops", "finance", "analyst"))]
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409)
READ_ERRORS = error_responses(400, 401, 403, 404)
Key = Annotated[str, Path(min_length=1, max_length=64, description="The record's id.")]
TextCursor = Annotated[str | None, Query(min_length=1, max_length=64, description="The previous nextCursor.")]
Limit = Annotated[int, Query(ge=1, le=records.MAX_PAGE)]
ExpectedVersion = Annotated[int | None, Query(alias="expectedVersion", ge=1, le=2**31 - 1)]
RecordBody = Annotated[dict[str, Any], Body(description="The record's fields (see the module docs).")]


def snake(value: Any) -> Any:
    """camelCase keys to snake_case, recursively (the domain's models read snake_case)."""
    if isinstance(value, list):
        return [snake(v) for v in value]
    if isinstance(value, dict):
        return {to_snake(k): snake(v) for k, v in value.items()}
    return value


def _page(found: list[dict[str, Any]], next_after: Any, name: str) -> dict[str, Any]:
    return {name: camel(found), "nextCursor": None if next_after is None else str(next_after)}


def _record_routes(plural: str, kind: records.Kind) -> None:
    """Create, list, get and update routes of one record kind."""

    @router.post(f"/{plural}", status_code=201, summary=f"Create a {kind.noun}", responses=WRITE_ERRORS,
                 name=f"create_{kind.noun}")
    def create(body: RecordBody, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
        return camel(records.create(ws, kind, snake(body), who.sub))

    @router.get(f"/{plural}", summary=f"{plural.capitalize()} by id", responses=READ_ERRORS,
                name=f"list_{plural}")
    def list_records(ws: WorkspaceDep, _: Reader, cursor: TextCursor = None, limit: Limit = 50,
                     status: Annotated[str | None, Query(pattern="^(active|inactive)$")] = None,
                     kind_filter: Annotated[str | None, Query(alias="kind", min_length=1, max_length=16,
                                                              description="brand, mall, tenant; "
                                                              "distributor, customer")] = None,
                     ) -> dict[str, Any]:
        where = {"status": status, "kind": kind_filter}
        return _page(*records.page(ws, kind, after=cursor, limit=limit, where=where), plural)

    @router.get(f"/{plural}/{{key}}", summary=f"One {kind.noun}", responses=READ_ERRORS,
                name=f"get_{kind.noun}")
    def get(key: Key, ws: WorkspaceDep, _: Reader) -> dict[str, Any]:
        return camel(kinds.show(ws, kind, key))

    @router.patch(f"/{plural}/{{key}}", summary=f"Change a {kind.noun}", responses=WRITE_ERRORS,
                  name=f"update_{kind.noun}")
    def patch(key: Key, body: RecordBody, ws: WorkspaceDep, who: Writer,
              expected_version: ExpectedVersion = None) -> dict[str, Any]:
        """Fields to change, and `status` (active | inactive); the record is validated whole."""
        return camel(kinds.update(ws, kind, key, snake(body), who.sub, expected_version=expected_version))


for _plural, _kind in (("principals", kinds.PRINCIPALS), ("programs", kinds.PROGRAMS),
                       ("parties", kinds.PARTIES)):
    _record_routes(_plural, _kind)


class Restriction(BodyModel):
    state: str = text(16, "pending, pushed or failed", json_schema_extra={"enum": list(RESTRICTION_STATES)})
    detail: str | None = text(1000, default=None)


@router.put("/programs/{key}/restriction", summary="Record the bank restriction state of its VPA list",
            responses=WRITE_ERRORS)
def put_restriction(key: Key, body: Restriction, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    return camel(kinds.set_restriction(ws, key, body.state, who.sub, body.detail))


# -- assignments -----------------------------------------------------------------------------------------


@router.post("/assignments", status_code=201, summary="Assign a program to a distributor or customer",
             responses=WRITE_ERRORS)
def assign(body: RecordBody, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    return camel(assignments.assign(ws, snake(body), who.sub))


class Unassign(BodyModel):
    ends_on: Day | None = Field(None, description="Last day in force; default today (OPS_TIMEZONE).")
    reason: str | None = text(1000, default=None)


@router.post("/assignments/{assignment_id}/unassign", summary="End an assignment", responses=WRITE_ERRORS)
def unassign(assignment_id: IdPath, body: Unassign, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    return camel(assignments.unassign(ws, assignment_id, who.sub, body.ends_on, body.reason))


@router.get("/assignments", summary="Assignments by id", responses=READ_ERRORS)
def list_assignments(
    ws: WorkspaceDep, _: Reader,
    party_id: Annotated[str | None, Query(alias="partyId", min_length=1, max_length=64)] = None,
    program_id: Annotated[str | None, Query(alias="programId", min_length=1, max_length=64)] = None,
    on: Annotated[Day | None, Query(description="Only those in force on this day.")] = None,
    cursor: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    found = assignments.list_assignments(ws, party_id=party_id, program_id=program_id, on=on, after=cursor,
                                         limit=limit)
    return _page(*found, "assignments")


# -- vouchers --------------------------------------------------------------------------------------------

Money = Annotated[str, Field(pattern=r"^[0-9]{1,15}(\.[0-9]{1,4})?$", max_length=20,
                             description="Major units as decimal text, e.g. '500.00'.")]


class IssueVouchers(BodyModel):
    program_id: str = text(64)
    face_value: Money
    price_paid: Money
    count: StrictInt = Field(1, ge=1, le=vouchers.MAX_ISSUE)
    holder_id: str | None = text(64, "The distributor or customer.", default=None)


class ChangeStatus(BodyModel):
    status: str = text(16, json_schema_extra={"enum": list(VOUCHER_STATUSES)})
    holder_id: str | None = text(64, default=None)
    reason: str | None = text(1000, default=None)
    expected_version: int | None = Field(None, ge=1, le=2**31 - 1)


@router.post("/vouchers", status_code=201, summary="Issue vouchers of a program", responses=WRITE_ERRORS)
def issue(body: IssueVouchers, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    made = vouchers.issue(ws, body.program_id, body.face_value, body.count, body.price_paid, who.sub,
                          body.holder_id)
    return {"vouchers": camel(made)}


@router.post("/vouchers/{voucher_id}/status", summary="Distribute, redeem, expire or cancel a voucher",
             responses=WRITE_ERRORS)
def change_status(voucher_id: Key, body: ChangeStatus, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    return camel(vouchers.transition(ws, voucher_id, body.status, who.sub, holder_id=body.holder_id,
                                     reason=body.reason, expected_version=body.expected_version))


@router.get("/vouchers/{voucher_id}", summary="One voucher", responses=READ_ERRORS)
def get_voucher(voucher_id: Key, ws: WorkspaceDep, _: Reader) -> dict[str, Any]:
    return camel(vouchers.get(ws, voucher_id))


@router.get("/vouchers", summary="Vouchers by id", responses=READ_ERRORS)
def list_vouchers(
    ws: WorkspaceDep, _: Reader,
    program_id: Annotated[str | None, Query(alias="programId", min_length=1, max_length=64)] = None,
    holder_id: Annotated[str | None, Query(alias="holderId", min_length=1, max_length=64)] = None,
    status: Annotated[str | None, Query(min_length=1, max_length=16)] = None,
    cursor: TextCursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    found = vouchers.list_vouchers(ws, program_id=program_id, holder_id=holder_id, status=status,
                                   after=cursor, limit=limit)
    return _page(*found, "vouchers")
