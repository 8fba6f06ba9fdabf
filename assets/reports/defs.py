"""Finance reports in Dagster (group `reports`): the HTML and XLSX report of each business date and each
month, built by `ops_pipeline.reports.build` (the same code as `ops-pipeline reports build`)."""

from datetime import date

import dagster as dg
import polars as pl

from assets.metadata import markdown_table
from assets.partitions import DAILY, MONTHLY
from ops_pipeline.money import to_major
from ops_pipeline.reports import build
from ops_pipeline.reports.model import Built
from resources.ops import OpsResource

GROUP = "reports"
# Built after the date's reconciliations (another domain declares them; a missing key loads as external)
RECONS = [dg.AssetKey("settlement_recon"), dg.AssetKey("payout_recon")]


def _metadata(built: Built) -> dict:
    summary = pl.DataFrame(
        [(s.recon, s.currency, s.status, s.count, *(str(to_major(v, s.currency)) for v in
          (s.internal_minor, s.external_minor, s.difference_minor))) for s in built.summary],
        schema=["recon", "currency", "status", "count", "internal", "external", "difference"], orient="row")
    meta = {"summary": markdown_table(summary),
            **{f"{p.suffix[1:]}_file": dg.MetadataValue.path(str(p)) for p in built.files}}
    if built.kind == "daily":
        meta["open_breaks"] = dg.MetadataValue.int(built.breaks)
    else:
        meta["balances"] = dg.MetadataValue.int(built.balances)
        meta["balances_not_tying"] = dg.MetadataValue.int(built.untied)
    return meta


@dg.asset(group_name=GROUP, partitions_def=DAILY, deps=RECONS, kinds={"html", "excel"})
def finance_report(context: dg.AssetExecutionContext, ops: OpsResource) -> dg.MaterializeResult:
    """The business date's finance report: reconciliation summary, open breaks with age, settlement aging,
    differences, charts; `OPS_HOME/reports/daily/<date>.{html,xlsx}`."""
    with ops.workspace() as ws:
        built = build.build_day(ws, date.fromisoformat(context.partition_key))
    return dg.MaterializeResult(metadata=_metadata(built))


@dg.asset(group_name=GROUP, partitions_def=MONTHLY, deps=RECONS, kinds={"html", "excel"})
def finance_month_report(context: dg.AssetExecutionContext, ops: OpsResource) -> dg.MaterializeResult:
    """The month's finance report: the summary over its dates, and per merchant and currency opening +
    movements by type = closing, tied to the ledger; `OPS_HOME/reports/monthly/<YYYY-MM>.{html,xlsx}`."""
    with ops.workspace() as ws:
        built = build.build_month(ws, date.fromisoformat(context.partition_key))
    return dg.MaterializeResult(metadata=_metadata(built))


defs = dg.Definitions(assets=[finance_report, finance_month_report])
