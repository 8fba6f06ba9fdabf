"""Load a bank statement file into the Delta table `bank_statement_entries`, once.

The statement id is the SHA-256 of the file's bytes: loading the same file again (by any path: CLI, API,
landing folder) is a no-op. A file is all or nothing: one malformed entry refuses the whole file.
"""

from __future__ import annotations

import gc
import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import pyarrow as pa

from ops_pipeline import audit
from ops_pipeline.errors import InvalidInput
from ops_pipeline.lake.tables import BANK_STATEMENT_ENTRIES
from ops_pipeline.statements import Entry, camt053, mt940
from ops_pipeline.workspace import Workspace

TABLE = BANK_STATEMENT_ENTRIES.name


@dataclass(frozen=True)
class LoadResult:
    statement_id: str
    file_name: str
    format: str
    entries: int
    already_loaded: bool


def detect(data: bytes) -> str:
    """`camt053` for XML, `mt940` for SWIFT tags; anything else is refused."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"<":
        return "camt053"
    if head in (b":", b"{"):
        return "mt940"
    raise InvalidInput("file: neither MT940 (starts with ':' or '{') nor camt.053 XML (starts with '<')")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Parsing makes hundreds of thousands of small objects that all live on and form no cycles: the
    garbage collector's passes over them only cost time (a third of a 200,000-entry parse)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse(data: bytes, fmt: str) -> list[Entry]:
    with _collector_paused():
        if fmt == "camt053":
            return camt053.parse(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise InvalidInput(f"line {line}: not UTF-8 text") from None
        return mt940.parse(text.replace("\r\n", "\n"))


def is_loaded(ws: Workspace, statement_id: str) -> bool:
    with ws.lake.connect(TABLE) as con:
        found = con.execute(f"SELECT count(*) FROM lake_{TABLE} WHERE statement_id = ?", [statement_id])
        return found.fetchone()[0] > 0


def _table(entries: list[Entry], same: dict[str, object]) -> pa.Table:
    """The entries as rows of `bank_statement_entries`, numbered from 1, with the values of `same`."""
    schema = BANK_STATEMENT_ENTRIES.schema
    columns = {f.name: [getattr(e, f.name) for e in entries] for f in fields(Entry)}
    columns |= {name: [value] * len(entries) for name, value in same.items()}
    columns["sequence"] = list(range(1, len(entries) + 1))
    return pa.Table.from_pydict({name: columns[name] for name in schema.names}, schema=schema)


def load_statement(
    ws: Workspace, data: bytes, file_name: str, actor: str, entries: list[Entry] | None = None
) -> LoadResult:
    """Parse (unless the caller did: `entries`) and append a statement's entries with an audit record; a
    statement already loaded is a no-op."""
    statement_id = hashlib.sha256(data).hexdigest()
    fmt = detect(data)
    entries = parse(data, fmt) if entries is None else entries
    if not entries:
        raise InvalidInput(f"file: {file_name!r} holds no statement entries")
    with ws.lock(TABLE):
        if is_loaded(ws, statement_id):
            return LoadResult(statement_id, file_name, fmt, 0, already_loaded=True)
        ingest_id, now = str(uuid.uuid4()), datetime.now(UTC)
        with _collector_paused():
            table = _table(entries, {"statement_id": statement_id, "format": fmt, "file_name": file_name,
                                     "ingest_id": ingest_id, "loaded_at": now})
        version = ws.lake.append(TABLE, table)
        with ws.engine.begin() as conn:
            audit.record(conn, actor=actor, entity_type="bank_statement", entity_id=statement_id,
                         action="load",
                         after={"file_name": file_name, "format": fmt, "entries": len(entries),
                                "accounts": sorted({e.account for e in entries}), "ingest_id": ingest_id,
                                "lake_version": version})
    return LoadResult(statement_id, file_name, fmt, len(entries), already_loaded=False)
