"""Gift-card commissions, invoices and their payments over REST under `/api/giftcards`: `ops` computes,
issues, credits, matches and reminds; `ops`, `finance` and `analyst` read. Amounts are major units as exact
decimal text; months are YYYY-MM. Domain work: `ops_pipeline.giftcards` (commission_lines, invoices,
invoice_files, invoice_payments)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse
from pydantic import Field

from ops_pipeline.api.auth import require_roles
from ops_pipeline.api.deps import WorkspaceDep
from ops_pipeline.api.errors import error_responses
from ops_pipeline.api.models import Body, Day, camel, text
from ops_pipeline.auth import Principal
from ops_pipeline.errors import NotFound
from ops_pipeline.giftcards import commission_lines, invoice_files, invoice_payments, invoices
from ops_pipeline.money import to_major

router = APIRouter(prefix="/api/giftcards", tags=["giftcards finance"])
Writer = Annotated[Principal, Depends(require_roles("ops"))]
Reader = Annotated[Principal, Depends(require_roles("ops", "finance", "analyst"))]
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409)
READ_ERRORS = error_responses(400, 401, 403, 404)
Month = Annotated[str, Query(pattern=r"^[0-9]{4}-[0-9]{2}$", description="YYYY-MM")]
Number = Annotated[str, Path(pattern=r"^(INV|CN)-[0-9]{4}-[0-9]{6}$", description="INV-... or CN-...")]
MEDIA = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class Span(Body):
    first: Day
    last: Day | None = Field(None, description="Default: `first` (one day); within first's month.")


class Issue(Body):
    month: str = text(7, "YYYY-MM, a month that is over.", pattern=r"^[0-9]{4}-[0-9]{2}$")
    issued_on: Day | None = Field(None, description="Default: today (OPS_TIMEZONE).")


class Credit(Body):
    amount: str = Field(pattern=r"^[0-9]{1,15}(\.[0-9]{1,4})?$", max_length=20, description="Major units.")
    reason: str = text(1000)


class OnDay(Body):
    on: Day | None = Field(None, description="Default: today (OPS_TIMEZONE).")


@router.post("/commissions/compute", summary="Compute the commission lines of days", responses=WRITE_ERRORS)
def compute(body: Span, ws: WorkspaceDep, _: Writer) -> dict[str, Any]:
    """Replace the `commission_lines` partitions of the days from `first` to `last` (run a month's days in
    order: tiers and monthly caps count the earlier days)."""
    done = commission_lines.compute_days(ws, body.first, body.last or body.first)
    return camel(
        {
            "first": done.first.isoformat(),
            "last": done.last.isoformat(),
            "sales": done.sales,
            "commission_minor": done.commission_minor,
            "discount_minor": done.discount_minor,
        }
    )


@router.get(
    "/commissions", summary="A month's commissions per distributor and program", responses=READ_ERRORS
)
def commissions_of_month(month: Month, ws: WorkspaceDep, _: Reader) -> dict[str, Any]:
    rows = invoices.month_summary(ws, invoices.parse_month(month)).to_dicts()
    return {
        "month": month,
        "commissions": camel(
            [
                {
                    "party_id": r["party_id"],
                    "program_id": r["program_id"],
                    "currency": r["currency"],
                    "sales": r["sales"],
                    **{
                        k.removesuffix("_minor"): str(to_major(r[k], r["currency"]))
                        for k in (
                            "face_value_minor",
                            "discount_minor",
                            "commission_minor",
                            "adjustment_minor",
                        )
                    },
                }
                for r in rows
            ]
        ),
    }


@router.post("/invoices", summary="Issue a month's invoices", responses=WRITE_ERRORS)
def issue(body: Issue, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    """One invoice per distributor and currency not yet invoiced that month, with its files."""
    month = invoices.parse_month(body.month)
    numbers = invoices.issue_month(ws, month, who.sub, on=body.issued_on)
    invoice_files.write_month(ws, month)
    return {"issued": numbers}


@router.get("/invoices", summary="Invoices and credit notes by number", responses=READ_ERRORS)
def list_invoices(
    ws: WorkspaceDep,
    _: Reader,
    month: Month | None = None,
    party_id: Annotated[str | None, Query(alias="partyId", min_length=1, max_length=64)] = None,
    kind: Annotated[str | None, Query(pattern="^(invoice|credit_note)$")] = None,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    found = invoices.list_invoices(
        ws,
        month=month and invoices.parse_month(month),
        party_id=party_id,
        kind=kind,
        after=cursor,
        limit=limit,
    )
    return {
        "invoices": camel([invoices.view(i) for i in found]),
        "nextCursor": found[-1].number if len(found) == limit else None,
    }


@router.get("/invoices/aging", summary="Unpaid invoices by age", responses=READ_ERRORS)
def aging(ws: WorkspaceDep, _: Reader, on: Annotated[Day | None, Query()] = None) -> dict[str, Any]:
    day = on or date.today()
    rows = invoice_payments.aging(ws, day)
    return {
        "on": day.isoformat(),
        "aging": camel(
            [
                {
                    "currency": r.currency,
                    "bucket": r.bucket,
                    "invoices": r.invoices,
                    "outstanding": str(to_major(r.outstanding_minor, r.currency)),
                }
                for r in rows
            ]
        ),
    }


@router.get("/invoices/{number}", summary="One invoice or credit note, with its files", responses=READ_ERRORS)
def get_invoice(number: Number, ws: WorkspaceDep, _: Reader) -> dict[str, Any]:
    found = invoices.get(ws, number)
    files = {
        kind: f"/api/giftcards/invoices/{number}/files/{kind}"
        for kind, path in invoice_files.paths(ws, found).items()
        if path.exists()
    }
    return camel({**invoices.view(found), "files": files})


@router.get(
    "/invoices/{number}/files/{kind}",
    summary="An invoice's HTML, PDF or XLSX file",
    response_class=FileResponse,
    responses=READ_ERRORS,
)
def invoice_file(
    number: Number, kind: Annotated[str, Path(pattern="^(html|pdf|xlsx)$")], ws: WorkspaceDep, _: Reader
) -> FileResponse:
    path = invoice_files.paths(ws, invoices.get(ws, number))[kind]
    if not path.exists():
        raise NotFound(f"kind: the {kind} file of {number} is not written yet")
    return FileResponse(
        path,
        media_type=MEDIA[kind],
        filename=path.name,
        content_disposition_type="inline" if kind != "xlsx" else "attachment",
    )


@router.post(
    "/invoices/{number}/credit-notes",
    status_code=201,
    summary="Credit part of an invoice",
    responses=WRITE_ERRORS,
)
def credit_note(number: Number, body: Credit, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    note = invoices.credit_note(ws, number, body.amount, body.reason, who.sub)
    invoice_files.write_month(ws, note.month)
    return camel(invoices.view(note))


@router.post(
    "/invoices/payments/match", summary="Match statement credits to invoices", responses=WRITE_ERRORS
)
def match_payments(ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    done = invoice_payments.match(ws, who.sub)
    return camel(
        {
            "matched": done.matched,
            "amount_minor": done.amount_minor,
            "unmatched": [{**u, "value_date": u["value_date"].isoformat()} for u in done.unmatched],
        }
    )


@router.post(
    "/invoices/payments/reminders", summary="Send the reminders of overdue invoices", responses=WRITE_ERRORS
)
def reminders(body: OnDay, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    sent = invoice_payments.remind(ws, body.on or date.today(), who.sub)
    return {"sent": [{"invoice": n, "level": level} for n, level in sent]}
