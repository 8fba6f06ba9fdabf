"""Tickets from a file: CSV with a header, or JSON lines; checked whole before any ticket is created.

    batch = read_tickets(ws, Path("tickets.csv"))    # [NewTicket, ...] validated, groups resolved
    tickets.create_tickets(ws, actor, batch)

Fields: group (id or name; or group_id), user_id, priority, source, reference, description; an empty
cell takes the default. Every problem is one InvalidInput naming the file, the row (1 = the first
ticket) and the field.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ops_pipeline.errors import InvalidInput, NotFound
from ops_pipeline.tickets import groups, model
from ops_pipeline.tickets.tickets import NewTicket
from ops_pipeline.workspace import Workspace

COLUMNS = frozenset({"group", "group_id", "user_id", "priority", "source", "reference", "description"})
MAX_ID = 2**63 - 1


def resolve_group(ws: Workspace, value: str) -> int:
    """A group id (ASCII digits), or the id of the group named `value`."""
    if value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID:
        return int(value)
    with ws.read_engine.connect() as conn:
        found = groups.by_name(conn, value)
    if found is None:
        raise NotFound(f"group {value!r}: not found")
    return found.group_id


def read_tickets(ws: Workspace, path: Path) -> list[NewTicket]:
    """Every ticket of `path` (`.csv`: CSV with a header; otherwise JSON lines), validated."""
    group_ids: dict[str, int] = {}
    batch = []
    for where, record in _records(path):
        try:
            batch.append(_ticket(ws, record, group_ids))
        except (InvalidInput, NotFound) as exc:  # an unknown group is bad input in a file
            raise InvalidInput(f"{where}: {exc}") from None
    return batch


def _ticket(ws: Workspace, record: dict[str, Any], group_ids: dict[str, int]) -> NewTicket:
    unknown = sorted(set(record) - COLUMNS)
    if unknown:
        raise InvalidInput(f"{unknown[0]}: is not a column; allowed: {', '.join(sorted(COLUMNS))}")
    given = {k: v for k, v in record.items() if v not in (None, "")}
    group = str(given.get("group") or given.get("group_id") or "")
    if not group:
        raise InvalidInput("group: is required")
    priority = given.get("priority", model.PRIORITY_DEFAULT)
    if isinstance(priority, str) and priority.isascii() and priority.strip().lstrip("-").isdigit():
        priority = int(priority)
    if group not in group_ids:
        group_ids[group] = resolve_group(ws, group)
    return NewTicket(
        group_id=group_ids[group],
        user_id=given.get("user_id"),
        priority=model.priority(priority),
        source=given.get("source", "manual"),
        reference=given.get("reference"),
        description=given.get("description"),
    ).validated()


def _records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`file: row N`, fields) of each ticket; a malformed row ends it with an InvalidInput naming it."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name}: is not UTF-8 text (byte {exc.start})") from None
    if path.suffix.lower() == ".csv":
        yield from _csv_records(path.name, text)
        return
    number = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        number += 1
        where = f"{path.name}: row {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{where}: is not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise InvalidInput(f"{where}: is not a JSON object")
        yield where, record


def _csv_records(name: str, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    number = 0
    while True:
        where = f"{name}: row {number + 1}"
        try:
            record = next(reader, None)
        except csv.Error as exc:
            raise InvalidInput(f"{where}: is not valid CSV ({exc})") from None
        if record is None:
            return
        number += 1
        if None in record:
            raise InvalidInput(
                f"{where}: has {len(reader.fieldnames) + len(record[None])} cells, the header "
                f"{len(reader.fieldnames)}"
            )
        yield where, record
