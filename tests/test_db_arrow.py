"""`db.arrow.arrow_tables` (SQLite and PostgreSQL): the same values as SQLAlchemy's own read, datetimes as
UTC instants to the microsecond, NULLs kept, the query's filter applied, an empty result typed."""

from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
from sqlalchemy import insert, select

from ops_pipeline.db.arrow import arrow_tables
from ops_pipeline.db.schema import gc_vouchers

ISSUED = datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC)


def _voucher(n: int, **times) -> dict:
    return {"voucher_id": f"V{n}", "program_id": "P1" if n < 3 else "P2", "currency": "INR",
            "face_value_minor": 50_000 + n, "price_paid_minor": 48_750, "status": "issued",
            "expires_at": ISSUED + timedelta(days=365), "issued_at": ISSUED + timedelta(microseconds=n),
            "version": 1, "updated_by": "test", "updated_at": ISSUED,
            **dict.fromkeys(("distributed_at", "redeemed_at", "expired_at", "cancelled_at")), **times}


def test_arrow_tables_reads_what_sqlalchemy_reads(ws):
    v = gc_vouchers.c
    paris = timezone(timedelta(hours=2))
    with ws.engine.begin() as conn:
        conn.execute(insert(gc_vouchers), [
            _voucher(0),
            _voucher(1, distributed_at=datetime(2026, 3, 29, 3, 30, 0, 1, tzinfo=paris), redeemed_at=ISSUED),
            _voucher(2, cancelled_at=datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)),
            _voucher(3),
        ])
    query = (select(v.voucher_id, v.face_value_minor, v.issued_at, v.distributed_at, v.redeemed_at,
                    v.cancelled_at).where(v.program_id == "P1").order_by(v.voucher_id))
    with ws.engine.connect() as conn:
        expected = [tuple(r) for r in conn.execute(query)]
        tables = arrow_tables(conn, {"vouchers": query, "none": query.where(v.program_id == "P9")})
    got = tables["vouchers"]
    assert got.schema.field("issued_at").type == pa.timestamp("us", tz="UTC")
    assert got.schema.field("face_value_minor").type == pa.int64()
    assert [tuple(r.values()) for r in got.to_pylist()] == expected
    assert got.column("distributed_at").to_pylist()[1] == datetime(2026, 3, 29, 1, 30, 0, 1, tzinfo=UTC)
    assert got.column("issued_at").to_pylist()[2] == ISSUED + timedelta(microseconds=2)
    assert tables["none"].num_rows == 0 and tables["none"].schema == got.schema
