"""`disbursement_status` (group `disbursements`), one partition per disbursement day (`DAILY`): the day's
envelopes' disbursements as they stand, appended to the lake as a new snapshot, with blocking checks
(envelope counters agree with the rows; the ledger program account moved as the sponsor statements say).
Domain work: `ops_pipeline.disbursements.status_snapshot`."""

from datetime import date

import dagster as dg
import polars as pl

from assets.metadata import json_value, markdown_table
from assets.partitions import DAILY
from assets.recon.assets import check_result
from ops_pipeline.disbursements import status_snapshot
from resources.ops import OpsResource

GROUP = "disbursements"
DISBURSEMENT_STATUS = dg.AssetKey("disbursement_status")
COUNTERS = "envelope_counters_match_rows"
LEDGER = "ledger_matches_bank_statements"


@dg.asset(key=DISBURSEMENT_STATUS, group_name=GROUP, partitions_def=DAILY, kinds={"delta"},
          check_specs=[
              dg.AssetCheckSpec(COUNTERS, asset=DISBURSEMENT_STATUS, blocking=True,
                                description=status_snapshot.check_counters.__doc__),
              dg.AssetCheckSpec(LEDGER, asset=DISBURSEMENT_STATUS, blocking=True,
                                description=status_snapshot.check_ledger_matches_statements.__doc__)])
def disbursement_status(context: dg.AssetExecutionContext, ops: OpsResource) -> dg.MaterializeResult:
    """The disbursements of the envelopes scheduled on the partition's day, with their status and recon
    state, as a new snapshot in the lake table `disbursement_status` (the latest snapshot of a day wins)."""
    day = date.fromisoformat(context.partition_key)
    with ops.workspace() as ws:
        snap = status_snapshot.take_snapshot(ws, day)
        results = [check_result(COUNTERS, status_snapshot.check_counters(snap), DISBURSEMENT_STATUS),
                   check_result(LEDGER, status_snapshot.check_ledger_matches_statements(ws, snap),
                                DISBURSEMENT_STATUS)]
    frame = pl.from_arrow(snap.rows.select(["status", "recon_state"]))
    counts = frame.group_by("status", "recon_state").len("disbursements").sort("status", "recon_state")
    return dg.MaterializeResult(
        metadata={"snapshot_id": snap.snapshot_id, "lake_version": snap.lake_version,
                  "dagster/row_count": snap.rows.num_rows, "envelopes": json_value(sorted(snap.envelopes)),
                  "statuses": markdown_table(counts.cast(pl.String))},
        check_results=results,
    )


STATUS_ASSETS = [disbursement_status]
