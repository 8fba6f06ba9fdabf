"""The invoice tables the analyst views (`sql/views/giftcards_finance.sql`) read from the operational DB, as
Arrow. Light on imports: `ops-pipeline sql` loads it (no polars)."""

from __future__ import annotations

import pyarrow as pa
from sqlalchemy import Connection, select

from ops_pipeline.db.arrow import arrow_tables
from ops_pipeline.db.schema import gc_invoice_payments, gc_invoices

_INVOICE_COLUMNS = ("number", "kind", "party_id", "month", "currency", "sales", "commission_minor",
                    "adjustment_minor", "total_minor", "corrects", "issued_on", "due_on")
_PAYMENT_COLUMNS = ("invoice_number", "amount_minor", "value_date")


def analyst_tables(conn: Connection | None) -> dict[str, pa.Table]:
    """The invoice tables the analyst views read, as Arrow (`db_<table>`); empty without a connection."""
    return arrow_tables(conn, {
        "db_gc_invoices": select(*(gc_invoices.c[c] for c in _INVOICE_COLUMNS)),
        "db_gc_invoice_payments": select(*(gc_invoice_payments.c[c] for c in _PAYMENT_COLUMNS)),
    })
