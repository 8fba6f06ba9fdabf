"""Ledger assets (group `ledger`): the raw feeds, the balance-operations log and its quarantine, the
balance cache in the operational DB and the balance snapshots. Domain work lives in `ops_pipeline.ledger`."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field
from sqlalchemy import func, select

from assets.metadata import balances_table, view_summary
from ops_pipeline import analytics
from ops_pipeline.db.schema import balance_cache as balance_cache_table
from ops_pipeline.ledger import KINDS, balances, landing, queries, snapshots
from resources.ops import OpsResource

GROUP = "ledger"
CONFIRMED_OPERATIONS = dg.AssetKey("confirmed_operations")
RECONCILED_OPERATIONS = dg.AssetKey("reconciled_operations")
BALANCE_OPERATIONS = dg.AssetKey("balance_operations")
LEDGER_QUARANTINE = dg.AssetKey("ledger_quarantine")
BALANCE_CACHE = dg.AssetKey("balance_cache")
BALANCE_SNAPSHOT = dg.AssetKey("balance_snapshot")
RAW_FEEDS = {"confirmed": CONFIRMED_OPERATIONS, "reconciled": RECONCILED_OPERATIONS}
INGEST_OP = "ingest_landing_files"
RAW_PREVIEW = "file_name, row_number, falcon_operation_id, type, amount, currency, operation_date"
LOG_PREVIEW = "falcon_operation_id, source, type, amount, currency, merchant_id, operation_date"
QUARANTINE_PREVIEW = "source, file_name, row_number, reason_code, reason"


class InputFile(dg.Config):
    path: str = Field(description="File to ingest (CSV, JSONL or Parquet).")
    kind: str = Field(description="confirmed (CO) or reconciled (RO).")


class IngestConfig(dg.Config):
    files: list[InputFile] | None = Field(
        default=None,
        description="Files to ingest; by default every file waiting in the landing folders.",
    )


def ingest_run_config(files: list[tuple[Path, str]]) -> dg.RunConfig:
    """Run config of the ingest job for these (path, kind) files."""
    config = IngestConfig(files=[InputFile(path=str(p), kind=k) for p, k in files])
    return dg.RunConfig(ops={INGEST_OP: config})


@dg.multi_asset(
    name=INGEST_OP,
    specs=[
        dg.AssetSpec(CONFIRMED_OPERATIONS, group_name=GROUP, kinds={"delta"},
                     description="Confirmed operations (CO) as received, with ingest id, file and row."),
        dg.AssetSpec(RECONCILED_OPERATIONS, group_name=GROUP, kinds={"delta"},
                     description="Reconciled operations (RO) as received, with ingest id, file and row."),
        dg.AssetSpec(BALANCE_OPERATIONS, group_name=GROUP, kinds={"delta"},
                     deps=[CONFIRMED_OPERATIONS, RECONCILED_OPERATIONS],
                     description="The transaction log: operations split into balance entries; append-only, "
                                 "idempotent by (source, falcon_operation_id)."),
        dg.AssetSpec(LEDGER_QUARANTINE, group_name=GROUP, kinds={"delta"},
                     description="Rejected input rows with a reason naming the column and value; kept "
                                 "forever, re-processable."),
    ],
)
def ingest_landing_files(
    context: dg.AssetExecutionContext, config: IngestConfig, ops: OpsResource
) -> Iterator[dg.MaterializeResult]:
    """Ingest operation files into the ledger (by default every file waiting in the landing folders) and
    archive the ones taken from there. With no file waiting it still materializes each table as it stands
    (rows, log version, open quarantine), so "Materialize all" is never a green no-op."""
    files = None if config.files is None else [(Path(f.path), f.kind) for f in config.files]
    with ops.workspace() as ws:
        outcomes = landing.ingest_files(ws, files)
        for o in outcomes:
            if o.skipped:
                context.log.info(f"{o.path.name}: {o.skipped}")
                continue
            r = o.result
            context.log.info(f"{r.file_name} ({o.kind}): {r.ingested} ingested, {r.duplicates} duplicate, "
                             f"{r.quarantined} quarantined, lake version {r.lake_version}"
                             + (f"; archived as {o.archived_as}" if o.archived_as else ""))
        if not outcomes:
            context.log.info(f"no file waits in {ws.settings.landing_dir}: the tables as they stand")
        done = [o.result for o in outcomes if o.result]
        ids = [r.ingest_id for r in done]
        con = analytics.connect(ws)
        for kind, key in RAW_FEEDS.items():
            mine = [r for r in done if r.kind == KINDS[kind]]
            yield dg.MaterializeResult(asset_key=key, metadata={
                "files": [r.file_name for r in mine],
                "rows_received": sum(r.rows for r in mine),
                "lake_version": ws.lake.latest_version(key.path[-1]),
                **view_summary(con, key.path[-1], RAW_PREVIEW, [r.ingest_id for r in mine]),
            })
        yield dg.MaterializeResult(asset_key=BALANCE_OPERATIONS, metadata={
            "operations_ingested": sum(r.ingested for r in done),
            "duplicates": sum(r.duplicates for r in done),
            "entries_appended": sum(r.entries for r in done),
            "lake_version": ws.lake.latest_version(BALANCE_OPERATIONS.path[-1]),
            **view_summary(con, "balance_operations", LOG_PREVIEW, ids),
        })
        yield dg.MaterializeResult(asset_key=LEDGER_QUARANTINE, metadata={
            "quarantined": sum(r.quarantined for r in done),
            "newly_quarantined": sum(r.newly_quarantined for r in done),
            "resolved": sum(r.resolved for r in done),
            "open": queries.open_quarantine(con),
            "console": ops.console_link("/ledger/quarantine"),
            "lake_version": ws.lake.latest_version(LEDGER_QUARANTINE.path[-1]),
            **view_summary(con, "ledger_quarantine", QUARANTINE_PREVIEW, ids),
        })


@dg.asset(key=BALANCE_CACHE, group_name=GROUP, kinds={"sql"}, deps=[BALANCE_OPERATIONS])
def balance_cache(ops: OpsResource) -> dg.MaterializeResult:
    """Confirmed and settled balance per (merchant, currency) in the operational DB. Folds only the log
    commits it has not seen, so its cost grows with new entries; reads add any entries after it."""
    with ops.workspace() as ws:
        version, new_entries = balances.refresh_cache(ws)
        c = balance_cache_table.c
        with ws.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(balance_cache_table)).scalar_one()
            rows = conn.execute(
                select(c.merchant_id, c.currency, c.confirmed_minor, c.settled_minor)
                .order_by(c.merchant_id, c.currency).limit(10)
            ).all()
    preview = pl.DataFrame([tuple(r) for r in rows], orient="row",
                           schema=["merchant_id", "currency", "confirmed_minor", "settled_minor"])
    return dg.MaterializeResult(metadata={
        "dagster/row_count": count, "lake_version": version, "new_entries_folded": new_entries,
        "preview": balances_table(preview),
    })


@dg.asset(key=BALANCE_SNAPSHOT, group_name=GROUP, kinds={"delta"}, deps=[BALANCE_CACHE])
def balance_snapshot(ops: OpsResource) -> dg.MaterializeResult:
    """Every balance (confirmed, settled, held, available) at one moment, appended to `balance_snapshots`:
    the history behind the `merchant_balances` view. Incremental: only new log entries are folded."""
    with ops.workspace() as ws:
        snap = snapshots.write_snapshot(ws)
    return dg.MaterializeResult(metadata={
        "snapshot_id": snap.snapshot_id, "balances": snap.balances, "new_entries_folded": snap.new_entries,
        "lake_version": snap.lake_version, "preview": balances_table(snap.preview),
    })


LEDGER_ASSETS = [ingest_landing_files, balance_cache, balance_snapshot]
