"""What is owed to principals over REST under `/api/giftcards/obligations`: `ops` computes and confirms;
`ops`, `finance` and `analyst` read. Paying one is a `principal_obligation_payment` job (`/api/job`, four
eyes). Answers are camelCase, amounts exact decimal text in major units."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ops_pipeline.api.auth import require_roles
from ops_pipeline.api.deps import WorkspaceDep
from ops_pipeline.api.giftcards import READ_ERRORS, WRITE_ERRORS, Key, Limit, TextCursor, _page
from ops_pipeline.api.models import Body, Day, camel, choices, text
from ops_pipeline.auth import Principal
from ops_pipeline.giftcards import obligations

router = APIRouter(prefix="/api/giftcards/obligations", tags=["giftcards"])
Writer = Annotated[Principal, Depends(require_roles("ops"))]
Reader = Annotated[Principal, Depends(require_roles("ops", "finance", "analyst"))]


class Compute(Body):
    principal_id: str = text(64)
    period_start: Day
    period_end: Day


@router.get("", summary="Obligations by id", responses=READ_ERRORS)
def list_obligations(
    ws: WorkspaceDep, _: Reader,
    principal_id: Annotated[str | None, Query(alias="principalId", min_length=1, max_length=64)] = None,
    status: Annotated[str | None, Query(json_schema_extra=choices(obligations.STATUSES))] = None,
    cursor: TextCursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    found = obligations.list_obligations(ws, principal_id=principal_id, status=status, after=cursor,
                                         limit=limit)
    return _page(*found, "obligations")


@router.post("", summary="Compute what is owed to a principal for a period (idempotent)",
             responses=WRITE_ERRORS)
def compute(body: Compute, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    """One obligation per currency with redemptions in the period: made, recomputed while open, or as is."""
    made = obligations.compute(ws, body.principal_id, body.period_start, body.period_end, who.sub)
    return {"obligations": camel(made)}


@router.get("/{key}", summary="One obligation", responses=READ_ERRORS)
def get(key: Key, ws: WorkspaceDep, _: Reader) -> dict[str, Any]:
    return camel(obligations.get(ws, key))


@router.post("/{key}/confirm", summary="Confirm a sent obligation: bank status and loaded statements",
             responses=WRITE_ERRORS)
def confirm(key: Key, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    """`paid` once the bank completed the transfer and a loaded statement shows it; `pending`,
    `awaiting_statement`, `mismatch` or `failed` otherwise (a failure or a mismatch opens a ticket)."""
    found = obligations.confirm(ws, who.sub, [key])
    outcome, detail = (found[0].outcome, found[0].detail) if found else (None, "not sent: nothing to confirm")
    return camel({**obligations.get(ws, key), "outcome": outcome, "detail": detail})
