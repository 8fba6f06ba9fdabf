"""The gift-card business in Dagster, declared in one place: daily commission lines, monthly invoices, the
daily payment matching with its schedule, and the sensor confirming transfers to principals."""

import dagster as dg

from assets.giftcards.assets import GIFTCARD_ASSETS
from assets.giftcards.jobs import invoice_payments_job, invoice_payments_schedule
from assets.giftcards.obligations import OBLIGATION_SENSORS

defs = dg.Definitions(
    assets=GIFTCARD_ASSETS, jobs=[invoice_payments_job], schedules=[invoice_payments_schedule],
    sensors=OBLIGATION_SENSORS,
)
