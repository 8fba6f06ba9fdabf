"""The runs of the reconciliations, from the Delta table: per run its date, time, row counts per status, and
whether it is the run in force (the latest of its date)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from ops_pipeline.errors import InvalidInput
from ops_pipeline.recon import store
from ops_pipeline.recon.breaks import check_recon
from ops_pipeline.recon.engine import STATUSES

if TYPE_CHECKING:
    from ops_pipeline.workspace import Workspace

MAX_LIMIT = 1000
COLUMNS = ("recon", "business_date", "run_id", "created_at", "latest", "rows", *STATUSES)


def list_runs(ws: Workspace, *, recon: str | None = None, business_date: date | None = None,
              latest_only: bool = False, limit: int = 100) -> list[dict]:
    """Runs, newest business date first and within a date newest run first."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit: {limit} is not between 1 and {MAX_LIMIT}")
    check_recon(recon)
    where, params = ["TRUE"], []
    for column, value in (("recon", recon), ("business_date", business_date)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if latest_only:
        where.append("latest")
    counts = ", ".join(f"count(*) FILTER (WHERE status = '{s}') AS {s}" for s in STATUSES)
    query = f"""
        WITH runs AS (
            SELECT recon, business_date, run_id, max(created_at) AS created_at, count(*) AS rows, {counts}
            FROM lake_recon_results GROUP BY recon, business_date, run_id),
        ranked AS (
            SELECT *, rank() OVER (PARTITION BY recon, business_date
                                   ORDER BY created_at DESC, run_id DESC) = 1 AS latest
            FROM runs)
        SELECT {', '.join(COLUMNS)} FROM ranked WHERE {' AND '.join(where)}
        ORDER BY business_date DESC, recon, created_at DESC, run_id DESC LIMIT {int(limit)}"""
    with store.results_connection(ws) as con:
        found = con.execute(query, params).fetchall()
    return [dict(zip(COLUMNS, r, strict=True)) for r in found]
