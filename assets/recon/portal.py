"""The portal reconciliation's job and the daily reconciliation schedule.

`portal_recon_job` materializes `portal_recon` and `recon_breaks` for one date: the landing sensor
(`sensors/portals.py`) requests it per new export. The business's daily run is the job type
`daily_reconciliation` (settlement, payouts, tickets; ops add a principal by hand): the schedule creates one
such job each morning for the day before, once (idempotency key per date), and the workers run it, so the
daily run and a hand-made one go the same way and show in the same queue.
"""

from datetime import date, datetime, timedelta

import dagster as dg

from assets.partitions import DAILY
from assets.recon.assets import PORTAL_RECON, RECON_BREAKS
from ops_pipeline.jobqueue import service
from ops_pipeline.settings import Settings
from resources.ops import OpsResource

ACTOR = "dagster:daily_reconciliation_schedule"

portal_recon_job = dg.define_asset_job(
    "portal_recon_job", selection=dg.AssetSelection.assets(PORTAL_RECON, RECON_BREAKS), partitions_def=DAILY,
    description="Reconcile the portal exports of a date against our vouchers, then sync the break tickets.")


class DailyReconciliationConfig(dg.Config):
    business_date: str = ""  # default: the day before the run, in OPS_TIMEZONE


@dg.op
def create_daily_reconciliation(context: dg.OpExecutionContext, config: DailyReconciliationConfig,
                                ops: OpsResource) -> int:
    """Create the `daily_reconciliation` job of the date (once per date); its id."""
    with ops.workspace() as ws:
        day = (date.fromisoformat(config.business_date) if config.business_date
               else datetime.now(ws.settings.tz).date() - timedelta(days=1))
        job, created = service.create_job(ws, type="daily_reconciliation",
                                          attributes={"business_date": day.isoformat()},
                                          idempotency_key=f"daily_reconciliation-{day}", actor=ACTOR,
                                          actor_kind="service")
    context.log.info(f"daily_reconciliation job {job.id} for {day} ({'created' if created else 'exists'})")
    return job.id


@dg.job(description="Create the daily_reconciliation job of a date (the workers run it).")
def daily_reconciliation_job():
    create_daily_reconciliation()


daily_reconciliation_schedule = dg.ScheduleDefinition(
    name="daily_reconciliation_schedule", job=daily_reconciliation_job, cron_schedule="30 6 * * *",
    execution_timezone=Settings.from_env().timezone, default_status=dg.DefaultScheduleStatus.RUNNING)
