"""What serves every domain: failed runs of any job become audit records and tickets."""

import dagster as dg

from sensors.run_failure import run_failure_audit_sensor

defs = dg.Definitions(sensors=[run_failure_audit_sensor])
