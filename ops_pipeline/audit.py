"""The audit trail: who changed what, with the values before and after."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from ops_pipeline.db.schema import audit_log


def record(
    conn: Connection,
    *,
    actor: str,
    entity_type: str,
    entity_id: str,
    action: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Write one audit record inside the caller's transaction, so state and audit commit together."""
    conn.execute(
        audit_log.insert().values(
            at=datetime.now(UTC),
            actor=actor,
            entity_type=entity_type,
            entity_id=entity_id,
            action=action,
            before=_jsonable(before),
            after=_jsonable(after),
            reason=reason,
        )
    )


def record_many(conn: Connection, records: list[dict[str, Any]]) -> None:
    """Write many audit records (keyword arguments of `record`) in one statement per 5,000."""
    now = datetime.now(UTC)
    rows = [
        {"at": now, "before": None, "after": None, "reason": None, **r,
         **{k: _jsonable(r.get(k)) for k in ("before", "after")}}
        for r in records
    ]
    for start in range(0, len(rows), 5000):
        conn.execute(audit_log.insert(), rows[start : start + 5000])


def history(conn: Connection, entity_type: str, entity_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(audit_log)
        .where(audit_log.c.entity_type == entity_type, audit_log.c.entity_id == entity_id)
        .order_by(audit_log.c.id)
    )
    return [dict(r._mapping) for r in rows]


def _jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
