"""The operational table the analyst view `principal_obligations` (sql/views/principal_obligations.sql)
reads, copied into DuckDB by `analytics.connect(ws, operational=True)`; a module of its own so that the
`sql` command imports neither the job queue nor HTTP."""

from __future__ import annotations

import pyarrow as pa
from sqlalchemy import Connection, select

from ops_pipeline.db.arrow import arrow_tables
from ops_pipeline.db.schema import gc_obligations


def analyst_tables(conn: Connection | None) -> dict[str, pa.Table]:
    """`db_gc_obligations` (empty with no connection)."""
    return arrow_tables(conn, {"db_gc_obligations": select(gc_obligations)})
