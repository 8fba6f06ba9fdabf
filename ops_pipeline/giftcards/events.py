"""Voucher events: written to the operational DB's outbox in the voucher's transaction, then published to
the Delta table `voucher_events` (daily partitions in OPS_TIMEZONE). A crash after the Delta commit and
before the outbox is marked publishes those events again: the view `voucher_events` keeps one per
`event_id`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, select, update

from ops_pipeline.db.bulk import insert_rows
from ops_pipeline.db.schema import gc_voucher_events
from ops_pipeline.lake.tables import VOUCHER_EVENTS
from ops_pipeline.workspace import Workspace

BATCH = 50_000  # events per Delta commit
_COLUMNS = [c for c in VOUCHER_EVENTS.schema.names if c not in ("event_at", "event_date")]


def add(conn: Connection, vouchers: list[dict[str, Any]], event: str, from_status: str | None, actor: str,
        at: datetime, reason: str | None = None) -> None:
    """One event per voucher (rows of `gc_vouchers` after the change), in the caller's transaction."""
    insert_rows(conn, gc_voucher_events, [
        {"event_id": str(uuid.uuid4()), "voucher_id": v["voucher_id"], "program_id": v["program_id"],
         "event": event, "from_status": from_status, "to_status": v["status"], "currency": v["currency"],
         "face_value_minor": v["face_value_minor"], "price_paid_minor": v["price_paid_minor"],
         "holder_id": v["holder_id"], "actor": actor, "reason": reason, "at": at, "published": False}
        for v in vouchers
    ])


def of_voucher(ws: Workspace, voucher_id: str) -> list[dict[str, Any]]:
    """A voucher's events, oldest first, from the operational DB (published or not)."""
    t = gc_voucher_events.c
    with ws.read_engine.connect() as conn:
        rows = conn.execute(select(gc_voucher_events).where(t.voucher_id == voucher_id).order_by(t.id)).all()
    return [dict(r._mapping) for r in rows]


def publish(ws: Workspace) -> int:
    """Append the unpublished events to Delta, oldest first, and mark them; the number published."""
    published = 0
    t = gc_voucher_events.c
    with ws.lock("voucher_events"):
        while True:
            with ws.engine.connect() as conn:
                rows = conn.execute(select(gc_voucher_events).where(t.published.is_(False))
                                    .order_by(t.id).limit(BATCH)).all()
            if not rows:
                return published
            data = {c: [getattr(r, c) for r in rows] for c in _COLUMNS}
            data["event_at"] = [r.at for r in rows]
            data["event_date"] = [r.at.astimezone(ws.settings.tz).date() for r in rows]
            ws.lake.append(VOUCHER_EVENTS.name, pa.table(data, schema=VOUCHER_EVENTS.schema))
            with ws.engine.begin() as conn:
                conn.execute(update(gc_voucher_events).where(t.id.in_([r.id for r in rows]))
                             .values(published=True))
            published += len(rows)
