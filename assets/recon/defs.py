"""Reconciliation in Dagster, declared in one place: the daily partitioned runs and their breaks, the portal
exports' landing sensor and the schedule of the daily reconciliation job."""

import dagster as dg

from assets.recon.assets import RECON_ASSETS
from assets.recon.portal import daily_reconciliation_job, daily_reconciliation_schedule, portal_recon_job
from sensors.portals import PORTAL_SENSORS

defs = dg.Definitions(assets=RECON_ASSETS, jobs=[portal_recon_job, daily_reconciliation_job],
                      sensors=PORTAL_SENSORS, schedules=[daily_reconciliation_schedule])
