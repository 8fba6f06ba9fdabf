"""Reconciliation over REST: the open breaks (filters, cursor), resolving one (ops only), and the runs.

Amounts are integer minor units (`...Minor`) plus the exact decimal in major units as a string; break ids are
the stable ids of `recon breaks` (the same break keeps its id across re-runs).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field

from ops_pipeline.api.auth import Principal, require_roles
from ops_pipeline.api.deps import WorkspaceDep, run_domain
from ops_pipeline.api.errors import error_responses
from ops_pipeline.api.models import Body, CamelModel, choices, text
from ops_pipeline.errors import InvalidInput
from ops_pipeline.money import to_major
from ops_pipeline.recon import breaks, runs
from ops_pipeline.recon.engine import STATUSES
from ops_pipeline.recon.registry import RECONS

router = APIRouter(tags=["reconciliation"])
Reader = Annotated[Principal, Depends(require_roles("ops", "finance", "analyst"))]
Resolver = Annotated[Principal, Depends(require_roles("ops"))]
ACTIONS = {"match": "match", "unmatch": "unmatch", "writeOff": "write-off", "write-off": "write-off"}
Money = Annotated[str, Field(description="Exact decimal in major units, e.g. '86.30' (EUR), '1200' (JPY).")]
BreakId = Annotated[str, Path(min_length=1, max_length=64, description="Stable break id (`recon breaks`).")]
Recon = Annotated[str | None, Query(description="Only this reconciliation.",
                                    json_schema_extra=choices(sorted(RECONS)))]
Day = Annotated[str | None, Query(alias="date", max_length=10, json_schema_extra={"format": "date"},
                                  description="Only this business date (YYYY-MM-DD).")]
PageCursor = Annotated[str | None, Query(max_length=200, description="nextCursor of the previous page.")]
OlderThan = Annotated[int | None, Query(alias="olderThan", ge=0, le=100_000,
                                        description="Only business dates more than this many days ago.")]


class Break(CamelModel):
    break_id: str
    recon: str
    business_date: date
    status: str = Field(description="unmatched_internal, unmatched_external or matched_with_difference.")
    internal_ids: list[str]
    external_ids: list[str]
    currency: str
    internal_amount_minor: int
    external_amount_minor: int
    amount_difference_minor: int = Field(description="internal - external, minor units.")
    internal_amount: Money
    external_amount: Money
    amount_difference: Money
    reason: str
    first_seen_at: datetime = Field(description="When a run first found this break.")


class BreakPage(CamelModel):
    breaks: list[Break]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class Resolve(Body):
    action: str = Field(description="match, unmatch or writeOff (write-off).",
                        json_schema_extra=choices(ACTIONS))
    note: str = text(2000, "Why (kept in the audit trail).")
    with_break_id: str | None = text(64, "match: the unmatched break of the other side to pair it with.",
                                     default=None)


class Decision(CamelModel):
    decision_id: int
    break_id: str
    action: str
    applied: str = Field(description="When the decision takes effect.")


class Run(CamelModel):
    recon: str
    business_date: date
    run_id: str
    created_at: datetime
    latest: bool = Field(description="The run in force for its date (the latest).")
    rows: int
    counts: dict[str, int] = Field(description="Rows per status.")


def _day(value: str | None) -> date | None:
    """An ISO date query parameter (pydantic would also read a number as seconds since the epoch)."""
    if value is None:
        return None
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise InvalidInput(f"date: {value!r} is not an ISO date (YYYY-MM-DD)")


def _wire(b: dict[str, Any]) -> Break:
    c = b["currency"]
    money = {f"{k}_amount": str(to_major(b[f"{k}_amount_minor"], c)) for k in ("internal", "external")}
    return Break(**b, **money,
                 amount_difference=str(to_major(b["amount_difference_minor"], c)))


READ_ERRORS = error_responses(400, 401, 403)


@router.get("/api/recon/breaks", summary="Open reconciliation breaks", responses=READ_ERRORS)
async def list_breaks(
    request: Request,
    ws: WorkspaceDep,
    _: Reader,
    status: Annotated[str | None, Query(json_schema_extra=choices(breaks.BREAK_STATUSES))] = None,
    recon: Recon = None,
    older_than: OlderThan = None,
    day: Day = None,
    cursor: PageCursor = None,
    limit: Annotated[int, Query(ge=1, le=breaks.MAX_LIMIT)] = 100,
) -> BreakPage:
    """Breaks of the latest runs, by business date, recon and break id; page with `cursor`."""
    found = await run_domain(request, lambda: breaks.open_breaks(
        ws, status=status, recon=recon, older_than_days=older_than, business_date=_day(day),
        after=None if cursor is None else breaks.parse_cursor(cursor), limit=limit + 1))
    page = found[:limit]
    last = page[-1] if len(found) > limit else None
    return BreakPage(breaks=[_wire(b) for b in page], next_cursor=last and breaks.cursor(last))


@router.post("/api/recon/breaks/{break_id}/resolve", summary="Resolve a break (ops)",
             responses=error_responses(400, 401, 403, 404))
async def resolve_break(request: Request, ws: WorkspaceDep, who: Resolver, break_id: BreakId,
                        body: Resolve) -> Decision:
    """Match (alone or `withBreakId`), unmatch or write off a break with a note: audited, its ticket resolved,
    applied by the next run of its date."""
    action = ACTIONS.get(body.action)
    if action is None:
        raise InvalidInput(f"action: {body.action!r} is not one of match, unmatch, writeOff")
    decision_id = await run_domain(request, breaks.resolve, ws, break_id, action, body.note, who.sub,
                                   body.with_break_id)
    return Decision(decision_id=decision_id, break_id=break_id, action=action,
                    applied="at the next run of the break's date")


@router.get("/api/recon/runs", summary="Reconciliation runs", responses=READ_ERRORS)
async def list_runs(
    request: Request,
    ws: WorkspaceDep,
    _: Reader,
    recon: Recon = None,
    day: Day = None,
    latest: Annotated[bool, Query(description="Only the runs in force.")] = False,
    limit: Annotated[int, Query(ge=1, le=runs.MAX_LIMIT)] = 100,
) -> dict[str, list[Run]]:
    """Runs per recon and business date, newest date first, with row counts per status."""
    found = await run_domain(request, lambda: runs.list_runs(ws, recon=recon, business_date=_day(day),
                                                              latest_only=latest, limit=limit))
    return {"runs": [Run(**{k: r[k] for k in ("recon", "business_date", "run_id", "created_at", "latest",
                                               "rows")}, counts={s: r[s] for s in STATUSES})
                     for r in found]}
