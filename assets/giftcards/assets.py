"""Gift-card commissions and invoices (group `giftcards`): `commission_lines`, one partition per day of
sales (`DAILY`), and `giftcard_invoices`, one partition per month (`MONTHLY`, fed by the month's days), with
their checks. Materializing a day again replaces its lines; a month again issues nothing twice and writes
only missing files. Domain work: `ops_pipeline.giftcards` (commission_lines, invoices, invoice_files).
"""

from datetime import date, datetime

import dagster as dg

from assets.metadata import json_value
from assets.partitions import DAILY, MONTHLY
from ops_pipeline.giftcards import commission_lines, invoice_files, invoices
from resources.ops import OpsResource

GROUP = "giftcards"
COMMISSION_LINES = dg.AssetKey("commission_lines")
GIFTCARD_INVOICES = dg.AssetKey("giftcard_invoices")
EVERY_SALE = "every_sold_voucher_has_a_commission_line"
TIED = "commissions_sum_to_invoice_totals"
ACTOR = "dagster:giftcards"


@dg.asset(
    key=COMMISSION_LINES,
    group_name=GROUP,
    partitions_def=DAILY,
    kinds={"delta", "polars"},
    check_specs=[
        dg.AssetCheckSpec(
            EVERY_SALE,
            asset=COMMISSION_LINES,
            blocking=True,
            description="Every voucher sold that day has its commission line.",
        )
    ],
)
def commission_lines_asset(context: dg.AssetExecutionContext, ops: OpsResource) -> dg.MaterializeResult:
    """Commission and discount of each voucher sold on the partition's day (Delta `commission_lines`,
    partition overwritten). Tiers and monthly caps count the month's earlier days: run the days in order."""
    day = date.fromisoformat(context.partition_key)
    with ops.workspace() as ws:
        lines = commission_lines.compute_day(ws, day)
        missing = commission_lines.unmatched_sales(ws, day)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": lines.sales,
            "commission_minor": lines.commission_minor,
            "discount_minor": lines.discount_minor,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=EVERY_SALE, passed=missing == 0, metadata={"sales_without_line": missing}
            )
        ],
    )


@dg.asset(
    key=GIFTCARD_INVOICES,
    group_name=GROUP,
    partitions_def=MONTHLY,
    deps=[COMMISSION_LINES],
    kinds={"html", "pdf", "xlsx"},
    check_specs=[
        dg.AssetCheckSpec(
            TIED,
            asset=GIFTCARD_INVOICES,
            blocking=True,
            description="Per distributor, the month's commission lines sum to "
            "its invoice (sales and commission).",
        )
    ],
)
def giftcard_invoices(context: dg.AssetExecutionContext, ops: OpsResource) -> dg.MaterializeResult:
    """One invoice per distributor and currency for the partition's month (numbered without gaps), with its
    HTML, PDF and XLSX files under OPS_HOME/invoices/YYYY-MM. A month not over yet is not invoiced: the
    check then compares nothing issued with lines that exist and reports them."""
    month = date.fromisoformat(context.partition_key)
    with ops.workspace() as ws:
        today = datetime.now(ws.settings.tz).date()
        over = today >= commission_lines.next_month(month)
        issued = invoices.issue_month(ws, month, ACTOR, on=today) if over else []
        written = invoice_files.write_month(ws, month)
        untied = invoices.untied(ws, month)
        count = len(invoices.list_invoices(ws, month=month, kind="invoice", limit=1_000_000))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": count,
            "issued": len(issued),
            "files_written": written,
            "month_over": over,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=TIED,
                passed=not untied or not over,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"untied": len(untied), "examples": json_value(untied[:5])},
            )
        ],
    )


GIFTCARD_ASSETS = [commission_lines_asset, giftcard_invoices]
