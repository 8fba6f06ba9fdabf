"""Jobs of the ledger: what runs together when a sensor or a schedule fires."""

import dagster as dg

from assets.ledger.assets import BALANCE_CACHE, BALANCE_SNAPSHOT, ingest_landing_files
from assets.ledger.checks import LEDGER_CHECKS
from ops_pipeline.ledger import compaction, holds, reserves
from resources.ops import OpsResource

ledger_pipeline_job = dg.define_asset_job(
    "ledger_pipeline_job",
    selection=dg.AssetSelection.groups("ledger"),
    description="The whole ledger as \"Materialize all\" runs it: ingest what waits in the landing folders, "
                "fold it into the cache, snapshot, and evaluate every check.",
)

ledger_ingest_job = dg.define_asset_job(
    "ledger_ingest_job",
    selection=dg.AssetSelection.assets(ingest_landing_files).without_checks(),
    description="Ingest operation files (by default every file waiting in the landing folders).",
)

balance_snapshot_job = dg.define_asset_job(
    "balance_snapshot_job",
    selection=dg.AssetSelection.assets(BALANCE_CACHE, BALANCE_SNAPSHOT).without_checks(),
    description="Fold new log entries into the balance cache and append a balance snapshot.",
)

ledger_checks_job = dg.define_asset_job(
    "ledger_checks_job",
    selection=dg.AssetSelection.checks(*LEDGER_CHECKS),
    description="Whole-log checks: replay equals cache, unique operation keys, fee rules present.",
)


@dg.op
def expire_due_holds(context: dg.OpExecutionContext, ops: OpsResource) -> int:
    """Mark holds past their expiry as expired (balances already ignore them)."""
    with ops.workspace() as ws:
        expired = holds.expire_holds(ws, actor="dagster:expire_holds_job")
    context.log.info(f"{expired} holds expired")
    return expired


@dg.job(description="Mark holds past their expiry as expired, with an audit record each.")
def expire_holds_job() -> None:
    expire_due_holds()


@dg.op
def release_due_reserves(context: dg.OpExecutionContext, ops: OpsResource) -> int:
    """Give back reserves whose merchant's reserve_days have passed (`reserve_expiry` entries)."""
    with ops.workspace() as ws:
        result = reserves.release_due(ws, actor="dagster:release_reserves_job")
    context.log.info(f"{result.released} reserves given back: {result.amounts} (minor units)")
    return result.released


@dg.job(description="Give back rolling reserves that are due, one log commit and one audit record per run.")
def release_reserves_job() -> None:
    release_due_reserves()


@dg.op
def compact_ledger_log(context: dg.OpExecutionContext, ops: OpsResource) -> dict[str, int]:
    """Rewrite the small files of the log and the raw feeds into large ones; vacuum past the retention."""
    with ops.workspace() as ws:
        results = compaction.compact(ws, actor="dagster:compact_log_job")
    for r in results:
        context.log.info(f"{r.table}: {r.files_before} files -> {r.files_after}, {r.vacuumed} vacuumed")
    return {r.table: r.files_after for r in results}


@dg.job(description="Compact the log's small files (live intake commits often) and vacuum files replaced "
                    "more than OPS_LOG_RETENTION_HOURS ago; balances, replay and time travel are unchanged.")
def compact_log_job() -> None:
    compact_ledger_log()


LEDGER_JOBS = [
    ledger_pipeline_job, ledger_ingest_job, balance_snapshot_job, ledger_checks_job, expire_holds_job,
    release_reserves_job, compact_log_job,
]
