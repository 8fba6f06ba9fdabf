"""Many rows into one table at once: the write paths that add thousands of rows per transaction (fund-out
payouts and holds, audit records, outbox rows) go through `insert_rows`.

On PostgreSQL the rows travel as one array per column and are inserted by a single
`INSERT ... SELECT FROM unnest(...)`: one short statement whatever the number of rows, nothing per row
in SQLAlchemy, and about a third of the time of multi-row VALUES (`docs/BENCHMARKS.md`, fund-out).
Values go through the columns' own bind processing (JSON encoding, UTC datetimes), so what is stored
is what `insert(table)` would store. A few rows, and SQLite, go through SQLAlchemy's executemany.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from sqlalchemy import Connection, String, Table, insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import TextClause

PAGE = 5000  # rows per statement
ARRAYS_FROM = 100  # rows; fewer go as a plain INSERT (planning unnest costs ~0.2 ms more for one row)
_PG = postgresql.dialect()


@cache
def _pg_statement(table: Table, columns: tuple[str, ...]) -> TextClause:
    """INSERT of `columns` from arrays bound as :c0, :c1...; each array cast to its column's base type
    (no length or precision: an explicit cast to VARCHAR(n) would cut a long value where the column
    refuses it)."""
    quote = _PG.identifier_preparer.quote
    arrays = []
    for i, name in enumerate(columns):
        column_type = table.c[name].type
        base = "TEXT" if isinstance(column_type, String) else re.sub(r"\(.*?\)", "", column_type.compile(_PG))
        arrays.append(f"CAST(:c{i} AS {base}[])")
    return text(
        f"INSERT INTO {_PG.identifier_preparer.format_table(table)} ({', '.join(map(quote, columns))}) "
        f"SELECT * FROM unnest({', '.join(arrays)})"
    )


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) in the caller's transaction."""
    if not rows:
        return
    if conn.dialect.name != "postgresql" or len(rows) < ARRAYS_FROM:
        for start in range(0, len(rows), PAGE):
            conn.execute(insert(table), rows[start : start + PAGE])
        return
    columns, dialect = tuple(rows[0]), conn.dialect
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]
    for start in range(0, len(rows), PAGE):
        params = {}
        for i, (name, process) in enumerate(zip(columns, processors, strict=True)):
            values = [r[name] for r in rows[start : start + PAGE]]
            params[f"c{i}"] = [process(v) for v in values] if process else values
        conn.execute(_pg_statement(table, columns), params)
