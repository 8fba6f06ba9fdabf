"""Operational DB rows as Arrow tables, typed from the selected columns: what the analyst views read from
the DB (`analytics.connect(ws, operational=True)`). Light on imports: `ops-pipeline sql` loads it."""

from __future__ import annotations

import pyarrow as pa
from sqlalchemy import Column, Connection, Select

from ops_pipeline.db.types import UTCDateTime

_ARROW_TYPES = {"BIGINT": pa.int64(), "INTEGER": pa.int64(), "DATE": pa.date32(), "BOOLEAN": pa.bool_()}


def _arrow_type(column: Column) -> pa.DataType:
    if isinstance(column.type, UTCDateTime):
        return pa.timestamp("us", tz="UTC")
    return _ARROW_TYPES.get(str(column.type), pa.string())


def arrow_tables(conn: Connection | None, queries: dict[str, Select]) -> dict[str, pa.Table]:
    """The rows of each query as an Arrow table of its columns (empty with no connection)."""
    out = {}
    for name, query in queries.items():
        columns = list(query.selected_columns)
        rows = conn.execute(query).all() if conn is not None else []
        out[name] = pa.table(
            {c.name: pa.array([r[i] for r in rows], _arrow_type(c)) for i, c in enumerate(columns)}
        )
    return out
