"""Reconciliation assets (group `recon`), one partition per business date (`DAILY`): each reconciliation's
latest run of the date, with blocking checks (exclusive matching, every record accounted for to the minor
unit), and `recon_breaks`, which keeps one ticket per open break and flags breaks beyond their window.

Materializing a partition again is a new run of that date superseding the earlier one (the lake keeps
history); break ids are stable across runs, so tickets never double. Domain work: `ops_pipeline.recon`.
"""

from collections import defaultdict
from datetime import date, datetime

import dagster as dg
import polars as pl

from assets.ledger.assets import BALANCE_OPERATIONS
from assets.metadata import json_value, markdown_table
from assets.partitions import DAILY
from ops_pipeline.ledger.snapshots import CheckResult
from ops_pipeline.money import to_major
from ops_pipeline.recon import breaks, checks, registry
from ops_pipeline.recon.service import RunSummary
from resources.ops import OpsResource

GROUP = "recon"
SETTLEMENT_RECON = dg.AssetKey("settlement_recon")
PAYOUT_RECON = dg.AssetKey("payout_recon")
PORTAL_RECON = dg.AssetKey("portal_recon")
RECON_BREAKS = dg.AssetKey("recon_breaks")
EXCLUSIVE = "no_record_matched_twice"
COMPLETE = "all_records_accounted_for"
AGED_BREAKS = "no_break_beyond_window"


def check_result(name: str, result: CheckResult, asset: dg.AssetKey,
                 severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name, asset_key=asset, passed=result.passed, severity=severity,
        description=result.description,
        metadata={"count": result.count, "examples": json_value(result.examples)},
    )


def status_table(summary: RunSummary) -> dg.MetadataValue:
    """Rows and amounts (major units) per status and currency."""
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in summary.rows:
        t = totals[(r.status, r.currency)]
        t[0], t[1], t[2] = t[0] + 1, t[1] + r.internal_amount_minor, t[2] + r.external_amount_minor
    rows = [{"status": s, "currency": c, "rows": str(n), "internal": str(to_major(i, c)),
             "external": str(to_major(e, c)), "difference": str(to_major(i - e, c))}
            for (s, c), (n, i, e) in sorted(totals.items())]
    columns = ("status", "currency", "rows", "internal", "external", "difference")
    return markdown_table(pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String)))


def recon_asset(recon: str, key: dg.AssetKey, deps: list[dg.AssetKey],
                description: str) -> dg.AssetsDefinition:
    """The partitioned asset that runs reconciliation `recon` for its partition's date, with its checks."""
    specs = [dg.AssetCheckSpec(name, asset=key, blocking=True, description=check.__doc__)
             for name, check in ((EXCLUSIVE, checks.check_exclusive), (COMPLETE, checks.check_complete))]

    @dg.asset(key=key, group_name=GROUP, partitions_def=DAILY, deps=deps, kinds={"delta"},
              check_specs=specs, description=description)
    def _recon(context: dg.AssetExecutionContext, ops: OpsResource) -> dg.MaterializeResult:
        day = date.fromisoformat(context.partition_key)
        with ops.workspace() as ws:
            summary = registry.RECONS[recon](ws, day, actor=f"dagster:{key.to_user_string()}")
            results = [check_result(EXCLUSIVE, checks.check_exclusive(ws, recon, day), key),
                       check_result(COMPLETE, checks.check_complete(ws, recon, day), key)]
        return dg.MaterializeResult(
            metadata={"run_id": summary.run_id, "lake_version": summary.lake_version,
                      "dagster/row_count": len(summary.rows), "statuses": status_table(summary),
                      "counts": json_value(summary.counts), "amounts_minor": json_value(summary.amounts)},
            check_results=results,
        )

    return _recon


settlement_recon = recon_asset(
    "settlement", SETTLEMENT_RECON, [BALANCE_OPERATIONS],
    "Settlement reconciliation of the date: confirmed operations (CO) against reconciled ones (RO).")
payout_recon = recon_asset(
    "payouts", PAYOUT_RECON, [],
    "Payout reconciliation of the date: fund-out payouts and cash-outs against the bank statement debits.")
portal_recon = recon_asset(
    "portal", PORTAL_RECON, [],
    "Portal reconciliation of the date: our vouchers against each principal's portal export of the date.")


@dg.asset(key=RECON_BREAKS, group_name=GROUP, partitions_def=DAILY,
          deps=[SETTLEMENT_RECON, PAYOUT_RECON, PORTAL_RECON],
          check_specs=[dg.AssetCheckSpec(AGED_BREAKS, asset=RECON_BREAKS,
                                         description="No break older than its reconciliation's window.")])
def recon_breaks(context: dg.AssetExecutionContext, ops: OpsResource) -> dg.MaterializeResult:
    """Open breaks of the date's latest runs; one ticket (source `reconciliation`) per open break, opened
    once, and the tickets of breaks gone since (matched by a later run, or decided) resolved."""
    day = date.fromisoformat(context.partition_key)
    with ops.workspace() as ws:
        opened, resolved = breaks.sync_tickets(ws, actor="dagster:recon_breaks")
        found = breaks.open_breaks(ws, business_date=day)
        today = datetime.now(ws.settings.tz).date()
        aged = [checks.check_aged_breaks(ws, recon, today) for recon in sorted(registry.RECONS)]
    per_status = pl.DataFrame([(b["recon"], b["status"]) for b in found], orient="row",
                              schema={"recon": pl.String, "status": pl.String})
    summary = per_status.group_by("recon", "status").len("breaks").sort("recon", "status")
    combined = CheckResult(all(a.passed for a in aged), "; ".join(a.description for a in aged),
                           sum(a.count for a in aged), [e for a in aged for e in a.examples])
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(found), "breaks": markdown_table(summary.cast(pl.String)),
                  "tickets_opened": len(opened), "tickets_resolved": len(resolved),
                  "opened_ticket_ids": json_value([t["id"] for t in opened])},
        check_results=[check_result(AGED_BREAKS, combined, RECON_BREAKS, dg.AssetCheckSeverity.WARN)],
    )


RECON_ASSETS = [settlement_recon, payout_recon, portal_recon, recon_breaks]
