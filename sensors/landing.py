"""Files dropped in `OPS_HOME/landing/{confirmed,reconciled}/` launch the ingest job, one run per file."""

import json
import time

import dagster as dg

from assets.jobs import ledger_ingest_job
from assets.landing import landing_files
from assets.ledger import ingest_run_config
from resources.ops import OpsResource

MAX_FILES_PER_TICK = 20
SETTLE_SECONDS = 1.0  # a file changed more recently may still be being written


@dg.sensor(job=ledger_ingest_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_files_sensor(
    context: dg.SensorEvaluationContext, ops: OpsResource
) -> dg.SensorResult | dg.SkipReason:
    """Request an ingest run per new landing file, in order of arrival, at most MAX_FILES_PER_TICK per tick.

    The cursor (arrival of the last file requested) only moves forward; the run key (kind, name, mtime,
    size) makes a repeated tick a no-op and a rewritten file a new run.
    """
    settings = ops.settings()
    after = tuple(json.loads(context.cursor)) if context.cursor else None
    new = [f for f in landing_files(settings) if after is None or f.arrival > after]
    settled_before = time.time_ns() - int(SETTLE_SECONDS * 1e9)
    ready = []
    for f in new[:MAX_FILES_PER_TICK]:
        if f.ctime_ns > settled_before:  # later arrivals are newer still
            break
        ready.append(f)
    if not ready:
        if new:
            return dg.SkipReason(f"{len(new)} new file(s) still being written in {settings.landing_dir}")
        return dg.SkipReason(f"no new files in {settings.landing_dir}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=f.run_key, run_config=ingest_run_config([(f.path, f.kind)]),
                          tags={"ops/file": f.path.name, "ops/kind": f.kind})
            for f in ready
        ],
        cursor=json.dumps(ready[-1].arrival),
    )
