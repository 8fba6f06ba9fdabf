"""Bank statement files dropped in `OPS_HOME/landing/statements/` are loaded by the sensor itself (a file is
small and loads in one commit, no run needed); each tick loads what waits and archives it."""

from __future__ import annotations

import dagster as dg

from ops_pipeline.statements.landing import load_landing
from resources.ops import OpsResource

ACTOR = "dagster:statement_landing_sensor"


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def statement_landing_sensor(context: dg.SensorEvaluationContext, ops: OpsResource) -> dg.SkipReason:
    """Load and archive every statement file waiting; a refused file is archived as rejected and logged."""
    with ops.workspace() as ws:
        outcomes = load_landing(ws, ACTOR)
    for o in outcomes:
        if o.error:
            context.log.warning(f"statement {o.path.name} refused: {o.error}")
    loaded = [o.result for o in outcomes if o.result]
    again = sum(r.already_loaded for r in loaded)
    return dg.SkipReason(
        f"loaded {len(loaded) - again} statement file(s) "
        f"({sum(r.entries for r in loaded)} entries), {again} already loaded, "
        f"{sum(bool(o.error) for o in outcomes)} refused"
    )


STATEMENTS_SENSORS = [statement_landing_sensor]
