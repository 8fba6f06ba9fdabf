"""Live intake: operations posted one at a time or in batches, written to the log by group commit.

Design: a committer thread in the API process, not a durable intake table. Each request queues its rows
and waits; the thread takes everything queued, waiting at most `OPS_INTAKE_COMMIT_MS` after the oldest
request or until `OPS_INTAKE_COMMIT_ROWS` rows are queued, and ingests them with `ingest.ingest_rows`
(the file path's core: the same validation, split, idempotency and quarantine), one log commit per kind
for all those requests. A request is answered only after that commit, so:
- accepted means in the Delta log, and the balance read (cache + log entries after it) includes it with
  no second store to absorb or to read;
- a crash before the commit loses only unanswered requests, and nothing of them is in the log (the commit
  is atomic); their retry is new. A crash after the commit but before the answer is harmless too: the
  retry is a duplicate by (source, falcon_operation_id) and answers 200 with the original ingest id.
Requests never split across commits; one commit per kind holds whole requests.

The thread keeps what ingest looks up warm between commits (`writer_state.Warm`: Delta handles, one DuckDB
connection, an index of the log's keys), so a commit costs the new rows' work, not a scan of the log.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections import Counter
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import dataclass, field
from operator import itemgetter
from typing import NamedTuple

import polars as pl

from ops_pipeline import audit
from ops_pipeline.errors import InvalidInput
from ops_pipeline.lake.tables import INPUT_COLUMNS
from ops_pipeline.ledger import KINDS
from ops_pipeline.ledger.ingest import LOG, ingest_rows
from ops_pipeline.ledger.writer_state import Cold, Warm
from ops_pipeline.workspace import Workspace

MAX_OPERATIONS = 10_000  # per request
FILE_NAME = "api"  # the `file_name` of posted rows in the raw tables, the quarantine and ingest_runs


class Outcome(NamedTuple):
    """One posted operation's result: status accepted, duplicate, conflict or rejected (a tuple: a batch
    makes thousands per commit, and a frozen dataclass costs several times more to build)."""

    falcon_operation_id: str | None
    kind: str
    status: str
    ingest_id: str | None = None
    reason_code: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class PostResult:
    outcomes: list[Outcome]
    lake_version: int  # a log version that includes every accepted operation


@dataclass
class _Request:
    rows: list[dict]  # INPUT_COLUMNS + kind
    actor: str
    done: Future = field(default_factory=Future)


class Intake:
    """The committer: `post` from any thread; `close` commits what is queued and stops."""

    def __init__(self, ws: Workspace, commit_ms: int | None = None, commit_rows: int | None = None):
        self.ws = ws
        self.wait = (ws.settings.intake_commit_ms if commit_ms is None else commit_ms) / 1000
        self.max_rows = ws.settings.intake_commit_rows if commit_rows is None else commit_rows
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ledger-intake", daemon=True)
        self._thread.start()

    def post(self, rows: list[dict], actor: str) -> PostResult:
        """Queue operations and wait until they are committed."""
        return self.submit(rows, actor).result()

    def submit(self, rows: list[dict], actor: str) -> Future:
        """Queue operations (dicts of INPUT_COLUMNS and `kind`): a future of their PostResult, set once they
        are committed."""
        if not 1 <= len(rows) <= MAX_OPERATIONS:
            raise InvalidInput(f"operations: {len(rows)} given, 1 to {MAX_OPERATIONS:,} allowed")
        for i, row in enumerate(rows):
            if (kind := row.get("kind")) not in KINDS:
                raise InvalidInput(f"operations[{i}].kind: {kind!r} is not one of {', '.join(KINDS)}")
        request = _Request(rows, actor)
        self._queue.put(request)
        return request.done

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        state = Warm(self.ws) if self.ws.lake.is_local else Cold(self.ws)  # kept warm across commits
        # load the log's key index now, not on the first request; a failure recurs in the first commit's
        # sync (under the lock), which reports it to the waiting requests instead of stopping this thread
        with suppress(Exception):
            state.sync()
        try:
            self._serve(state)
        finally:
            state.close()

    def _serve(self, state: Cold) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch, rows = [first], len(first.rows)
            deadline = time.monotonic() + self.wait
            while rows < self.max_rows:
                try:
                    item = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                rows += len(item.rows)
            try:
                results = commit(self.ws, [r.rows for r in batch], [r.actor for r in batch], state)
            except BaseException as exc:  # every waiting request gets the error
                for r in batch:
                    r.done.set_exception(exc)
            else:
                for r, result in zip(batch, results, strict=True):
                    r.done.set_result(result)


def commit(ws: Workspace, requests: list[list[dict]], actors: list[str],
           state: Cold | None = None) -> list[PostResult]:
    """Ingest several requests' operations together: one `ingest_rows` (one log commit) per kind, with the
    committer's `state` (what it keeps warm between commits; read afresh by default); each
    request is audited (`ledger_operations` / `post`, entity id: its first operation's ingest id) with its
    actor and what came of its operations."""
    outcomes: list[list[Outcome | None]] = [[None] * len(rows) for rows in requests]
    version = ws.lake.latest_version(LOG)
    at_kind: dict[str, list[tuple[int, int]]] = {kind: [] for kind in KINDS}
    for i, rows in enumerate(requests):
        for j, row in enumerate(rows):
            at_kind[row["kind"]].append((i, j))
    for kind, source in KINDS.items():
        if not (at := at_kind[kind]):
            continue
        # column-wise, transposed in C: cheaper to build than a frame of dicts
        values = zip(*map(_columns, (requests[i][j] for i, j in at)), strict=True)
        text = dict(zip(INPUT_COLUMNS, map(list, values), strict=True))
        df = pl.DataFrame(text, schema={c: pl.String for c in INPUT_COLUMNS}).with_row_index(
            "row_number", offset=1).with_columns(pl.col("row_number").cast(pl.Int64))
        # the batch's content hash: quarantine ids of a repeated identical request stay the same
        sha = hashlib.sha256(json.dumps([kind, *text.values()]).encode()).hexdigest()
        result = ingest_rows(ws, df, source, FILE_NAME, sha, state=state)
        version = max(version, result.lake_version)
        found = result.outcomes.sort("row_number")
        kinds = [kind] * len(at)
        for (i, j), outcome in zip(at, map(Outcome, text["falcon_operation_id"], kinds, *(
                found[c].to_list() for c in ("status", "ingest_id", "reason_code", "reason"))), strict=True):
            outcomes[i][j] = outcome
    results = [PostResult(list(o), version) for o in outcomes]
    with ws.engine.begin() as conn:
        for actor in set(actors):
            audit.record_many(conn, [_audit(r) for r, a in zip(results, actors, strict=True) if a == actor],
                              actor=actor, entity_type="ledger_operations")
    return results


def _columns(row: dict) -> tuple:
    """A posted row's INPUT_COLUMNS values (None for a missing one)."""
    try:
        return _COLUMNS(row)
    except KeyError:
        return tuple(row.get(c) for c in INPUT_COLUMNS)


_COLUMNS = itemgetter(*INPUT_COLUMNS)


def _audit(result: PostResult) -> dict:
    statuses = Counter(o.status for o in result.outcomes)
    return {"entity_id": result.outcomes[0].ingest_id or "rejected", "action": "post",
            "after": {"operations": len(result.outcomes), **statuses,
                      "ingest_ids": sorted({o.ingest_id for o in result.outcomes if o.ingest_id}),
                      "lake_version": result.lake_version}}
