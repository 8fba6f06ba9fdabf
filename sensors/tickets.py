"""Tickets from the job queue: jobs that ended Failed and manual jobs waiting for a person.

The sensor does the work itself (a few queries, no run): its cursor is when the last failure it saw
happened, and each tick scans from `LOOKBACK` before it, since a failure committed late can carry an
earlier time. Scanning again is harmless: an event already covered by a ticket opens nothing
(`ops_pipeline.tickets.sources`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg

from ops_pipeline.tickets import sources
from resources.ops import OpsResource

LOOKBACK = timedelta(minutes=10)


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def job_tickets_sensor(context: dg.SensorEvaluationContext, ops: OpsResource) -> dg.SkipReason:
    """Open a ticket for each job that ended Failed since the cursor and each manual job without one;
    resolve the tickets of manual jobs a person has done."""
    previous = datetime.fromisoformat(context.cursor) if context.cursor else None
    since = previous - LOOKBACK if previous else None
    with ops.workspace() as ws:
        failed = sources.open_tickets_for_failed_jobs(ws, since)
        manual = sources.open_tickets_for_manual_jobs(ws)
        done = sources.resolve_tickets_of_finished_manual_jobs(ws)
    if failed.cursor is not None and (previous is None or failed.cursor > previous):
        context.update_cursor(failed.cursor.isoformat())  # forward only
    return dg.SkipReason(
        f"opened {len(failed.opened)} tickets for failed jobs, {len(manual)} for manual jobs; "
        f"resolved {len(done)} of manual jobs done"
    )


TICKETS_SENSORS = [job_tickets_sensor]
