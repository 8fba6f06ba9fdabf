"""`insert_rows` on PostgreSQL (column arrays through unnest) stores exactly what `insert(table)` stores, and
refuses what the column refuses."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, insert, select
from sqlalchemy.exc import DataError

from ops_pipeline.db.bulk import ARRAYS_FROM, insert_rows
from ops_pipeline.db.schema import audit_log, metadata


def test_arrays_store_what_insert_stores_and_refuse_long_values(pg_url):
    engine = create_engine(pg_url)
    metadata.create_all(engine, tables=[audit_log])
    at = datetime(2026, 11, 23, 23, 30, tzinfo=timezone(timedelta(hours=2)))
    rows = [
        dict(at=at, actor="ops:a", entity_type="hold", entity_id=f"h{i}", action="place",
             before=None if i % 2 else {"text": "é\"'\\\t\n", "n": 2**62, "list": [1, None]},
             after={"amount": "12.50"}, reason=None if i % 3 else "it's {a} [b]")
        for i in range(ARRAYS_FROM)
    ]
    with engine.begin() as conn:
        conn.execute(insert(audit_log), rows)
        insert_rows(conn, audit_log, rows)
        stored = [tuple(r)[1:] for r in conn.execute(select(audit_log).order_by(audit_log.c.id))]
    assert stored[:ARRAYS_FROM] == stored[ARRAYS_FROM:]
    assert stored[0][0] == at.astimezone(UTC) and stored[1][5] is None  # JSON null, as insert() stores it
    with pytest.raises(DataError, match="too long"), engine.begin() as conn:
        insert_rows(conn, audit_log, [dict(r, action="x" * 40) for r in rows])
    engine.dispose()
