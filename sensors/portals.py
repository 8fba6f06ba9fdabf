"""Portal exports dropped in `OPS_HOME/landing/portals/<principal_id>/` are loaded by the sensor itself (one
commit per file, like bank statements); each newly loaded export then requests a run of the portal
reconciliation for its date, the run key being the export id (SHA-256 of the file), so a file loaded again,
or a repeated tick, requests nothing more."""

from __future__ import annotations

import dagster as dg

from assets.recon.portal import portal_recon_job
from ops_pipeline.giftcards.portal_landing import load_landing
from resources.ops import OpsResource

ACTOR = "dagster:portal_landing_sensor"


@dg.sensor(job=portal_recon_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def portal_landing_sensor(context: dg.SensorEvaluationContext,
                          ops: OpsResource) -> dg.SensorResult | dg.SkipReason:
    """Load and archive every export waiting; reconcile the date of each new one."""
    with ops.workspace() as ws:
        outcomes = load_landing(ws, ACTOR)
    for o in outcomes:
        if o.error:
            context.log.warning(f"portal export {o.path.name} refused: {o.error}")
    new = [o.result for o in outcomes if o.result and not o.result.already_loaded]
    if not new:
        return dg.SkipReason(f"{len(outcomes)} file(s): {sum(bool(o.error) for o in outcomes)} refused, "
                             f"{sum(bool(o.result) for o in outcomes)} loaded before")
    return dg.SensorResult(run_requests=[
        dg.RunRequest(run_key=r.export_id, partition_key=r.export_date.isoformat(),
                      tags={"ops/file": r.file_name, "ops/principal": r.principal_id})
        for r in new])


PORTAL_SENSORS = [portal_landing_sensor]
