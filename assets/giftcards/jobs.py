"""Invoice payments, daily: match the statements' credits to invoices, then send the reminders due."""

from datetime import datetime

import dagster as dg

from ops_pipeline.giftcards import invoice_payments
from ops_pipeline.settings import Settings
from resources.ops import OpsResource

TIMEZONE = Settings.from_env().timezone
ACTOR = "dagster:invoice_payments"


@dg.op
def match_and_remind(context: dg.OpExecutionContext, ops: OpsResource) -> None:
    with ops.workspace() as ws:
        matched = invoice_payments.match(ws, ACTOR)
        sent = invoice_payments.remind(ws, datetime.now(ws.settings.tz).date(), ACTOR)
    context.log.info(
        f"{matched.matched} payments matched ({matched.amount_minor} minor units), "
        f"{len(matched.unmatched)} credits left for ops, {len(sent)} reminders sent"
    )


@dg.job(description="Match bank statement credits to gift-card invoices and remind overdue ones.")
def invoice_payments_job():
    match_and_remind()


invoice_payments_schedule = dg.ScheduleDefinition(
    name="invoice_payments_schedule",
    job=invoice_payments_job,
    cron_schedule="0 7 * * *",
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
