"""Compaction of the log and the raw feeds: small files rewritten into large ones, then a safe vacuum.

Live intake commits often (group commit), each commit adding a small file; a table of many files costs
every reader and every later commit more. `compact` rewrites them (deltalake `optimize.compact`: a commit
that removes the small files and adds the large ones with `dataChange = false`, so the change feed the
balance cache folds and the ledger's contents are unchanged), under the ledger lock like every writer.
Then `vacuum` deletes only files removed more than `OPS_LOG_RETENTION_HOURS` ago: a reader of an older
version (replay at the cache's version, a change feed from the cache's version, time travel) finds its files
as long as that version is younger than the retention. The commit log itself is kept (Delta's
`logRetentionDuration`), so versions stay addressable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ops_pipeline import audit
from ops_pipeline.lake.tables import BALANCE_OPERATIONS, CONFIRMED_OPERATIONS, RECONCILED_OPERATIONS
from ops_pipeline.workspace import Workspace

TABLES = (BALANCE_OPERATIONS.name, CONFIRMED_OPERATIONS.name, RECONCILED_OPERATIONS.name)
TARGET_BYTES = 128 * 1024 * 1024  # the size compaction aims at per file


@dataclass(frozen=True)
class Compacted:
    """One table's compaction: files before and after, files rewritten, files vacuumed, versions."""

    table: str
    files_before: int
    files_after: int
    rewritten: int
    vacuumed: int
    version_before: int
    version_after: int


def compact(ws: Workspace, *, actor: str, retention_hours: int | None = None) -> list[Compacted]:
    """Compact and vacuum the log and the raw feeds; audited (`ledger_log` / `compact`) with `actor`."""
    hours = ws.settings.log_retention_hours if retention_hours is None else retention_hours
    results = [_compact(ws, name, hours) for name in TABLES]
    with ws.engine.begin() as conn:
        audit.record(conn, actor=actor, entity_type="ledger_log", entity_id="compact", action="compact",
                     after={"retention_hours": hours, "tables": [asdict(r) for r in results]})
    return results


def _compact(ws: Workspace, name: str, retention_hours: int) -> Compacted:
    with ws.lock("ledger"):  # the log's writers are serialized: no intake commit races the rewrite
        table = ws.lake.open(name)
        if table is None:
            return Compacted(name, 0, 0, 0, 0, -1, -1)
        before, version = len(table.file_uris()), table.version()
        metrics = table.optimize.compact(target_size=TARGET_BYTES)
        vacuumed = table.vacuum(retention_hours=retention_hours, dry_run=False,
                                enforce_retention_duration=False)
        table.update_incremental()
        return Compacted(name, before, len(table.file_uris()), int(metrics.get("numFilesRemoved", 0)),
                         len(vacuumed), version, table.version())
