"""The operational tables the analyst views `disbursements`, `disbursement_recon` and
`disbursement_recon_errors` (sql/views/disbursements.sql) read, copied into DuckDB by
`analytics.connect(ws, operational=True)` (the analysts' entry points; other callers get them empty)."""

from __future__ import annotations

import pyarrow as pa
from sqlalchemy import Connection, select

from ops_pipeline.db.arrow import arrow_tables
from ops_pipeline.db.schema import (
    g2p_disbursement_recons,
    g2p_disbursements,
    g2p_envelopes,
    g2p_recon_errors,
    g2p_statements,
)


def analyst_tables(conn: Connection | None) -> dict[str, pa.Table]:
    """Arrow tables named `db_<table>` (disbursements with their envelope's program and currency); with no
    connection, empty tables of the same columns."""
    e = g2p_envelopes.c
    queries = {
        "db_g2p_disbursements": select(g2p_disbursements, e.program, e.currency).join(
            g2p_envelopes, e.id == g2p_disbursements.c.envelope_id
        ),
        "db_g2p_disbursement_recons": select(g2p_disbursement_recons),
        "db_g2p_recon_errors": select(g2p_recon_errors),
        "db_g2p_statements": select(g2p_statements),
    }
    return arrow_tables(conn, queries)

