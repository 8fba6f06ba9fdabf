"""The gift-card business in Dagster, declared in one place: daily commission lines, monthly invoices, and
the daily payment matching with its schedule."""

import dagster as dg

from assets.giftcards.assets import GIFTCARD_ASSETS
from assets.giftcards.jobs import invoice_payments_job, invoice_payments_schedule

defs = dg.Definitions(
    assets=GIFTCARD_ASSETS, jobs=[invoice_payments_job], schedules=[invoice_payments_schedule]
)
