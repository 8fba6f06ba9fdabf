"""Gift-card obligations in Dagster: the sensor that confirms principal transfers (declared in the
domain's `defs.py`).

The sensor does the work itself, like the ticket sensor (a few queries and one bank call per sent
obligation, no run): each tick confirms every `sent` obligation (`obligations.confirm`), which is
idempotent, so a repeated or late tick changes nothing more; no cursor is needed.
"""

import dagster as dg

from ops_pipeline.giftcards import obligations
from resources.ops import OpsResource


@dg.sensor(minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING)
def principal_payments_sensor(ops: OpsResource) -> dg.SkipReason:
    """Confirm sent obligations to principals: paid once the bank completed the transfer and a loaded
    statement shows it; a failed transfer or a statement mismatch opens a ticket."""
    with ops.workspace() as ws:
        found = obligations.confirm(ws, "dagster:principal_payments_sensor")
    counts = obligations.summary(found)
    shown = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "none sent"
    return dg.SkipReason(f"principal obligations confirmed: {shown}")


OBLIGATION_SENSORS = [principal_payments_sensor]
