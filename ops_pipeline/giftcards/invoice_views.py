"""The invoice tables the analyst views (`sql/views/giftcards_finance.sql`) read from the operational DB, as
Arrow. Light on imports: `ops-pipeline sql` loads it (no polars)."""

from __future__ import annotations

import pyarrow as pa
from sqlalchemy import Connection, select

from ops_pipeline.db.schema import gc_invoice_payments, gc_invoices

_ANALYST = {
    "db_gc_invoices": (
        gc_invoices,
        (
            "number",
            "kind",
            "party_id",
            "month",
            "currency",
            "sales",
            "commission_minor",
            "adjustment_minor",
            "total_minor",
            "corrects",
            "issued_on",
            "due_on",
        ),
    ),
    "db_gc_invoice_payments": (gc_invoice_payments, ("invoice_number", "amount_minor", "value_date")),
}


def analyst_tables(conn: Connection | None) -> dict[str, pa.Table]:
    """The invoice tables the analyst views read, as Arrow (`db_<table>`); empty without a connection."""
    out = {}
    for name, (table, columns) in _ANALYST.items():
        rows = conn.execute(select(*(table.c[c] for c in columns))).all() if conn is not None else []
        schema = pa.schema(
            [
                (
                    c,
                    pa.date32()
                    if c in ("month", "issued_on", "due_on", "value_date")
                    else pa.int64()
                    if c.endswith("_minor") or c == "sales"
                    else pa.string(),
                )
                for c in columns
            ]
        )
        out[name] = pa.table(
            {c: pa.array([r[i] for r in rows], schema.field(c).type) for i, c in enumerate(columns)},
            schema=schema,
        )
    return out
