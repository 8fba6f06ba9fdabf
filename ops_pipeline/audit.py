"""The audit trail: who changed what, with the values before and after."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from ops_pipeline.db.bulk import insert_rows
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
    record_many(conn, [{"entity_id": entity_id, "action": action, "before": before, "after": after,
                        "reason": reason}], actor=actor, entity_type=entity_type)


def record_many(
    conn: Connection,
    records: list[dict[str, Any]],
    *,
    actor: str,
    entity_type: str,
    at: datetime | None = None,
) -> None:
    """Like `record` for many entities in one statement; each record has `entity_id`, `action` and optionally
    `before`, `after`, `reason`."""
    if not records:
        return
    at = at or datetime.now(UTC)
    rows = [
        {"at": at, "actor": actor, "entity_type": entity_type, "entity_id": r["entity_id"],
         "action": r["action"], "before": _jsonable(r.get("before")), "after": _jsonable(r.get("after")),
         "reason": r.get("reason")}
        for r in records
    ]
    insert_rows(conn, audit_log, rows)


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
