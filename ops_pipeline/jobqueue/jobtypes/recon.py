"""Daily reconciliation: settlement, payouts and (given a principal) its portal export, for one business date;
then one ticket per open break. Ops create it by hand for a date (and a principal); the schedule
`daily_reconciliation_schedule` creates it every morning for the day before. Each action is a run of the date
that supersedes the earlier ones (results are append-only; break ids and tickets are stable), so a retry
is safe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import Field

from ops_pipeline.errors import OpsError
from ops_pipeline.jobqueue.actions import ActionContext, ActionError
from ops_pipeline.jobqueue.jobtypes.base import JobType
from ops_pipeline.jobqueue.jobtypes.fields import Id, Strict


class DailyReconciliation(Strict):
    """The business date (OPS_TIMEZONE) to reconcile, and optionally a principal whose portal export of that
    date is reconciled too."""

    business_date: date
    principal_id: Id | None = Field(None, description="Reconcile this principal's portal export of the date "
                                    "(every principal with an export of the date is in that run)")


@dataclass(frozen=True)
class RunRecon:
    """Run reconciliation `recon` for the job's date; its counts per status."""

    recon: str
    name: str

    def run(self, ctx: ActionContext) -> dict[str, Any]:
        from ops_pipeline.recon import portal, registry  # the recon imports the ledger, which imports jobs

        a: DailyReconciliation = ctx.attributes
        actor = f"job:{ctx.job.id}"
        try:
            if self.recon == portal.NAME:
                if a.principal_id is None:
                    return {"skipped": "no principal_id"}
                summary = portal.run(ctx.ws, a.business_date, actor=actor, principal_id=a.principal_id)
            else:
                summary = registry.RECONS[self.recon](ctx.ws, a.business_date, actor=actor)
        except OpsError as exc:
            raise ActionError(str(exc), retryable=False) from None
        return {"run_id": summary.run_id, "counts": summary.counts}


@dataclass(frozen=True)
class SyncBreakTickets:
    name: str = "sync_break_tickets"

    def run(self, ctx: ActionContext) -> dict[str, Any]:
        from ops_pipeline.recon import breaks

        opened, resolved = breaks.sync_tickets(ctx.ws, actor=f"job:{ctx.job.id}")
        return {"tickets_opened": len(opened), "tickets_resolved": len(resolved)}


DAILY_RECONCILIATION = JobType(
    name="daily_reconciliation",
    model=DailyReconciliation,
    example={"business_date": "2026-12-05", "principal_id": "P-CAFE-01"},
    description="Reconcile one business date: settlement, payouts and, given a principal, the portal export "
    "of that date; then open a ticket for each new break and resolve those of breaks gone.",
    actions=(RunRecon("settlement", "settlement_recon"), RunRecon("payouts", "payout_recon"),
             RunRecon("portal", "portal_recon"), SyncBreakTickets()),
    max_attempts=3,
)
