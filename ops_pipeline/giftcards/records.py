"""Principals, programs and parties as records: details validated by their model, stored as sealed JSON
(sensitive values encrypted), versioned (each change adds 1; a caller may require the version it read) and
audited with the masked values before and after."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Column, Connection, Table, insert, select, update

from ops_pipeline import audit
from ops_pipeline.crypto import cipher
from ops_pipeline.errors import Conflict, InvalidInput, NotFound
from ops_pipeline.jobqueue.jobtypes.base import (
    describe,
    mask_sensitive,
    open_sensitive,
    seal_sensitive,
    sensitive_paths,
)
from ops_pipeline.workspace import Workspace

MAX_PAGE = 500
STATUSES = ("active", "inactive")
BOOKKEEPING = ("status", "version", "created_by", "created_at", "updated_by", "updated_at")


@dataclass(frozen=True)
class Kind:
    """One kind of record: its table and key, its model, the columns kept beside the details, and the
    checks of its references (run in the writing transaction; raise InvalidInput naming the field)."""

    noun: str  # "principal": in messages, and `gc_<noun>` in the audit trail
    table: Table
    key: str
    model: type[BaseModel]
    columns: Callable[[Any], dict[str, Any]]
    check: Callable[[Connection, Any], None] = lambda conn, record: None
    initial: tuple[tuple[str, Any], ...] = ()  # more columns of a new record

    @property
    def entity_type(self) -> str:
        return f"gc_{self.noun}"

    @cached_property
    def sensitive(self):
        return sensitive_paths(self.model)

    def validate(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise InvalidInput(f"{self.noun}: must be an object, not {type(data).__name__}")
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(describe(exc, self.noun)) from None


def jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value


def view(kind: Kind, row: Any) -> dict[str, Any]:
    """A stored row as the API and the CLI show it: the details with sensitive values masked, the columns."""
    values = dict(row._mapping)
    details = mask_sensitive(values.pop("details"), kind.sensitive)
    return {**details, **{k: jsonable(v) for k, v in values.items()}}


def check_version(noun: str, key: Any, stored: int, expected: int | None) -> None:
    """Conflict when the caller requires a version (`expected`) that is not the stored one."""
    if expected is not None and stored != expected:
        raise Conflict(f"version: {noun} {key!r} is at version {stored}, not {expected}")


def find(conn: Connection, kind: Kind, key: str, lock: bool = False) -> Any:
    query = select(kind.table).where(kind.table.c[kind.key] == key)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"{kind.key}: no {kind.noun} {key!r}")
    return row


def create(ws: Workspace, kind: Kind, data: dict[str, Any], actor: str, reason: str | None = None
           ) -> dict[str, Any]:
    """Add a record (active, version 1); Conflict if its key is taken."""
    record = kind.validate(data)
    key = getattr(record, kind.key)
    details = record.model_dump(mode="json")
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        if conn.execute(select(kind.table.c[kind.key]).where(kind.table.c[kind.key] == key)).first():
            raise Conflict(f"{kind.key}: {kind.noun} {key!r} exists already")
        kind.check(conn, record)
        conn.execute(insert(kind.table).values(
            **{kind.key: key}, **kind.columns(record), **dict(kind.initial), status="active",
            details=seal_sensitive(details, kind.sensitive, cipher(ws.settings)), version=1,
            created_by=actor, created_at=now, updated_by=actor, updated_at=now))
        audit.record(conn, actor=actor, entity_type=kind.entity_type, entity_id=key, action="create",
                     after=mask_sensitive(details, kind.sensitive), reason=reason)
        return view(kind, find(conn, kind, key))


def update_record(
    ws: Workspace,
    kind: Kind,
    key: str,
    changes: dict[str, Any],
    actor: str,
    *,
    expected_version: int | None = None,
    reason: str | None = None,
    on_change: Callable[[set[str]], dict[str, Any]] = lambda changed: {},
) -> dict[str, Any]:
    """Change some top-level fields (and `status`: active | inactive); the key cannot change. Conflict when
    `expected_version` is given and is not the stored one. `on_change(changed fields)` gives more columns."""
    if not isinstance(changes, dict):
        raise InvalidInput(f"{kind.noun}: changes must be an object, not {type(changes).__name__}")
    changes = dict(changes)
    status = changes.pop("status", None)
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status: {status!r} is not one of {', '.join(STATUSES)}")
    if kind.key in changes:
        raise InvalidInput(f"{kind.key}: the key of a {kind.noun} cannot change")
    box = cipher(ws.settings)
    with ws.engine.begin() as conn:
        row = find(conn, kind, key, lock=True)
        check_version(kind.noun, key, row.version, expected_version)
        current = open_sensitive(row.details, kind.sensitive, box)
        record = kind.validate({**current, **changes})
        details = record.model_dump(mode="json")
        changed = {k for k in details if details[k] != current.get(k)}
        if status is not None and status != row.status:
            changed.add("status")
        if not changed:
            return view(kind, row)
        kind.check(conn, record)
        before = mask_sensitive({k: current.get(k) for k in changed - {"status"}}, kind.sensitive)
        after = mask_sensitive({k: details[k] for k in changed - {"status"}}, kind.sensitive)
        if "status" in changed:
            before["status"], after["status"] = row.status, status
        conn.execute(update(kind.table).where(kind.table.c[kind.key] == key).values(
            **kind.columns(record), **on_change(changed), status=status or row.status,
            details=seal_sensitive(details, kind.sensitive, box), version=row.version + 1,
            updated_by=actor, updated_at=datetime.now(UTC)))
        audit.record(conn, actor=actor, entity_type=kind.entity_type, entity_id=key, action="update",
                     before=before, after=after, reason=reason)
        return view(kind, find(conn, kind, key))


def get(ws: Workspace, kind: Kind, key: str) -> dict[str, Any]:
    with ws.read_engine.connect() as conn:
        return view(kind, find(conn, kind, key))


def trail(ws: Workspace, entity_type: str, key: str) -> list[dict[str, Any]]:
    """The audit records of one record, oldest first (values as written: sensitive ones masked)."""
    with ws.read_engine.connect() as conn:
        return audit.history(conn, entity_type, key)


def require(conn: Connection, kind: Kind, key: str, field: str) -> Any:
    """The stored row of record `key`, for the checks of references; InvalidInput naming `field` when there
    is none."""
    row = conn.execute(select(kind.table).where(kind.table.c[kind.key] == key)).first()
    if row is None:
        raise InvalidInput(f"{field}: no {kind.noun} {key!r}")
    return row


def keyset_page(ws: Workspace, key: Column, to_view: Callable[[Any], dict[str, Any]], after: Any, limit: int,
                *conditions: Any, **filters: Any) -> tuple[list[dict[str, Any]], Any]:
    """Rows of `key`'s table in `key` order after `after`, with `conditions` and equality `filters` on
    columns (None: any), as `to_view` shows them; and the `after` of the next page (None on the last)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit: {limit} is not between 1 and {MAX_PAGE}")
    query = select(key.table).where(*conditions).order_by(key).limit(limit + 1)
    if after is not None:
        query = query.where(key > after)
    for name, value in filters.items():
        if value is not None:
            query = query.where(key.table.c[name] == value)
    with ws.read_engine.connect() as conn:
        rows = conn.execute(query).all()
    next_after = getattr(rows[limit - 1], key.name) if len(rows) > limit else None
    return [to_view(r) for r in rows[:limit]], next_after


def page(ws: Workspace, kind: Kind, *, after: str | None = None, limit: int = 50,
         where: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Records of `kind` in key order, `where` their columns equal the values given (see `keyset_page`)."""
    where = {k: v for k, v in (where or {}).items() if v is not None}
    for name in where:
        if name not in kind.table.c or name == "details":
            raise InvalidInput(f"{name}: {kind.noun} records cannot be filtered by {name}")
    return keyset_page(ws, kind.table.c[kind.key], lambda r: view(kind, r), after, limit, **where)
