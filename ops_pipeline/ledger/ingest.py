"""Ingest: validate, deduplicate and split operations, then append them to the log in one commit.

Idempotent by (source, falcon_operation_id). A crash leaves the log as before or after the single
Delta commit; running the same file again completes whatever was not written.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
from sqlalchemy import insert

from ops_pipeline import audit
from ops_pipeline.db.schema import ingest_runs
from ops_pipeline.errors import InvalidInput
from ops_pipeline.lake.tables import (
    BALANCE_OPERATIONS,
    CONFIRMED_OPERATIONS,
    INPUT_COLUMNS,
    LEDGER_QUARANTINE,
    QUARANTINE_RESOLUTIONS,
    RECONCILED_OPERATIONS,
)
from ops_pipeline.ledger import KINDS, RESERVE_TYPES, balances, references
from ops_pipeline.ledger.reading import file_sha256, read_table
from ops_pipeline.ledger.split import CONTEXT_FIELDS, operation_amount_sql, primary_sql, split
from ops_pipeline.ledger.validation import REQUIRED, combine_reasons, reasons_frame, validate_operations
from ops_pipeline.ledger.writer_state import Cold, op_keys
from ops_pipeline.money import to_major
from ops_pipeline.observability import metrics
from ops_pipeline.workspace import Workspace

RAW_TABLES = {"CO": CONFIRMED_OPERATIONS.name, "RO": RECONCILED_OPERATIONS.name}
LOG = BALANCE_OPERATIONS.name
CONTENT = ("type", "amount_minor", "currency", "operation_date", "external_reference", "psp_id",
           "local_merchant_id", "shop_id")
# a valid row: operation_date is the parsed timestamp from here on
BATCH_COLUMNS = ("row_number", "falcon_operation_id", "external_reference", "type", "amount_minor",
                 "currency", pl.col("operation_ts").alias("operation_date"), "psp_id", "local_merchant_id",
                 "shop_id", "merchant_id", "balance_shop_id", *CONTEXT_FIELDS, "context_row")
ARROW = pl.CompatLevel.newest()  # polars -> Arrow without copying strings


@dataclass(frozen=True)
class IngestResult:
    ingest_id: str
    kind: str
    file_name: str
    rows: int
    ingested: int
    duplicates: int
    quarantined: int
    newly_quarantined: int
    resolved: int
    entries: int
    lake_version: int
    # per input row: row_number, status (accepted, duplicate, conflict, rejected), reason_code, reason and
    # ingest_id (of the ingest that first took the operation in)
    outcomes: pl.DataFrame = field(default=None, repr=False, compare=False)


def ingest_file(ws: Workspace, path: Path, kind: str) -> IngestResult:
    """Ingest a CSV, JSONL or Parquet file of confirmed or reconciled operations."""
    if kind not in KINDS:
        raise InvalidInput(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    path = Path(path)
    df = read_table(path, INPUT_COLUMNS, REQUIRED)
    return ingest_rows(ws, df, KINDS[kind], path.name, file_sha256(path))


def ingest_rows(ws: Workspace, df: pl.DataFrame, source: str, file_name: str, file_sha: str,
                write_raw: bool = True, state: Cold | None = None) -> IngestResult:
    """Ingest text rows (INPUT_COLUMNS + row_number) that came from the file with hash `file_sha`.

    Commits, in this order: raw rows, log entries (one commit: all or nothing), quarantine, resolutions.
    The raw rows are written and committed in a thread of their own while the entries are prepared.
    `state` is what a long-lived writer keeps between ingests (`writer_state.Warm`); by default it is read.
    """
    started = datetime.now(UTC)
    ingest_id = str(uuid.uuid4())
    state = state or Cold(ws)
    with ws.lock("ledger"), state.background() as background:
        state.sync()
        raw = (background.submit(_write_raw, state, df, source, file_name, file_sha, ingest_id, started)
               if write_raw else None)
        context = state.context()
        rows, rejects = validate_operations(df, context, ws.settings.timezone)
        con = state.con
        rows, rejects = references.check(ws, con, rows, rejects, source)
        new_ops, counts, conflicts, dups = _classify(ws, state, rows, source)
        rejects = combine_reasons(pl.concat([rejects, conflicts])) if len(conflicts) else rejects
        parts = split(new_ops, source, ingest_id, started)
        deltas = _fold(parts, context)  # the cache's sums, from the entries before they are written
        entries = int(deltas["entries"].sum() or 0)
        staged = state.stage(LOG, parts)  # files only: invisible until the commit below
        if raw:
            raw.result()  # the raw rows are committed before the log
        before, _ = balances.refresh_cache(ws)  # cache and log at one version: the new entries fold onto it
        version = before
        if entries:
            with balances.remembering(ws, before + 1, deltas):
                version = state.commit(staged, parts[0]["op_key"])
            if version != before + 1:  # not under the ledger lock after all: the kept sums may be another's
                ws.lake.forget(LOG, "fold", before + 1)
            if not balances.apply_to_cache(ws, deltas, before, version):
                balances.refresh_cache(ws)
        new_q = _append_quarantine(ws, con, df, rejects, source, file_name, file_sha, ingest_id, started)
        resolved = (_resolve(ws, con, source, file_sha, rows, conflicts, ingest_id, started)
                    if state.quarantined(file_sha) else 0)
    result = IngestResult(
        ingest_id=ingest_id, kind=source, file_name=file_name, rows=len(df), ingested=counts.get("new", 0),
        duplicates=counts.get("duplicate", 0), quarantined=len(rejects), newly_quarantined=new_q,
        resolved=resolved, entries=entries, lake_version=version,
        outcomes=_outcomes(rows, rejects, dups, ingest_id),
    )
    with ws.engine.begin() as conn:
        conn.execute(insert(ingest_runs).values(
            ingest_id=ingest_id, kind=source, file_name=file_name, file_sha256=file_sha, rows=result.rows,
            ingested=result.ingested, duplicates=result.duplicates, quarantined=result.quarantined,
            lake_version=version, started_at=started, finished_at=datetime.now(UTC),
        ))
    _count(result, started)
    return result


def _outcomes(rows: pl.DataFrame, rejects: pl.DataFrame, dups: pl.DataFrame, ingest_id: str) -> pl.DataFrame:
    """What happened to each row; a duplicate names the ingest that took its operation in first."""
    code = pl.col("reason_code")
    return (
        rows.select("row_number")
        .join(rejects, on="row_number", how="left")
        .join(dups, on="row_number", how="left")
        .select(
            "row_number",
            status=pl.when(code == "conflicting_duplicate").then(pl.lit("conflict"))
            .when(code.is_not_null()).then(pl.lit("rejected"))
            .when(pl.col("dup")).then(pl.lit("duplicate")).otherwise(pl.lit("accepted")),
            reason_code=code, reason="reason",
            ingest_id=pl.when(code.is_null()).then(pl.col("original").fill_null(ingest_id)),
        )
    )


def _count(result: IngestResult, started: datetime) -> None:
    for outcome, n in (("ingested", result.ingested), ("duplicate", result.duplicates),
                       ("quarantined", result.quarantined)):
        metrics.LEDGER_ROWS.labels(result.kind, outcome).inc(n)
    metrics.LEDGER_INGEST_SECONDS.labels(result.kind).observe((datetime.now(UTC) - started).total_seconds())
    metrics.LEDGER_LOG_VERSION.set(result.lake_version)


def _write_raw(state: Cold, df, source, file_name, file_sha, ingest_id, at) -> None:
    """Commit the raw rows as received, once per file content (a thread of its own, while the entries are
    prepared)."""
    table = RAW_TABLES[source]
    if state.file_seen(table, file_sha):
        return
    raw = df.with_columns(
        ingest_id=pl.lit(ingest_id), received_at=pl.lit(at).cast(pl.Datetime("us", "UTC")),
        file_name=pl.lit(file_name), file_sha256=pl.lit(file_sha),
    )
    state.commit(state.stage(table, _halves(raw)), pl.Series([file_sha]))


def _halves(df: pl.DataFrame) -> list[pl.DataFrame]:
    """Two slices (zero-copy) to encode as two files in parallel."""
    half = (len(df) + 1) // 2
    return [df.slice(0, half), df.slice(half)]


def _classify(ws, state: Cold, rows: pl.DataFrame, source: str
              ) -> tuple[pl.LazyFrame, dict[str, int], pl.DataFrame, pl.DataFrame]:
    """Mark each valid row new, duplicate (same content as stored or earlier in the file) or conflict.

    Returns (the new rows with their `op_key`, lazily, count per status, conflict reasons, duplicates: their
    `row_number`, `dup` and the `original` ingest_id when in the log). Only rows whose
    key occurs twice in the file or is already in the log need their content compared (the key is a hash
    of source and falcon_operation_id); every other valid row is new.
    """
    con = state.con
    keys = op_keys(con, source, rows.select("falcon_operation_id"))
    hits = state.log_hits(keys)
    key = pl.col("op_key")
    batch = rows.select(*BATCH_COLUMNS, "valid").with_columns(keys)
    doubt = (key.is_duplicated() | key.is_in(hits["op_key"].implode())) & pl.col("valid")
    batch = batch.with_columns(_doubt=doubt)
    clear = pl.col("valid") & ~pl.col("_doubt")
    new = batch.lazy().filter(clear).drop("valid", "_doubt")
    counts, conflicts = {"new": batch.select(clear.sum()).item()}, reasons_frame([])
    dups = pl.DataFrame(schema={"row_number": pl.Int64, "dup": pl.Boolean, "original": pl.String})
    doubtful = batch.filter("_doubt").drop("valid", "_doubt")
    if len(doubtful):
        log = ws.lake.relation(con, LOG)
        found, conflicts, doubtful_new, dups = _compare(con, doubtful, hits, source, log)
        counts = {k: counts.get(k, 0) + found.get(k, 0) for k in {*counts, *found}}
        schema = new.collect_schema()
        new = pl.concat([new, doubtful_new.lazy().select(schema.names()).cast(schema)])
    return new, counts, conflicts, dups


def _compare(con, doubtful: pl.DataFrame, hits: pl.DataFrame, source: str,
             log: str) -> tuple[dict[str, int], pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Classify rows whose key is in the log or twice in the file by comparing their content.

    Returns (count per status, conflict reasons, the rows that are new, the duplicates).
    """
    con.register("doubtful_rows", doubtful.to_arrow(compat_level=ARROW))
    con.register("hits", hits.to_arrow())
    con.execute("""
        CREATE OR REPLACE TEMP TABLE batch AS
        SELECT *, row_number() OVER (PARTITION BY falcon_operation_id ORDER BY row_number) AS occurrence
        FROM doubtful_rows
    """)
    cols = ", ".join(c for c in CONTENT if c not in ("type", "amount_minor"))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE stored AS
        SELECT falcon_operation_id, type, {operation_amount_sql()} AS amount_minor, {cols}, ingest_id
        FROM {log}
        WHERE op_key IN (SELECT op_key FROM hits) AND source = $source AND {primary_sql()}
    """, {"source": source})
    same = " AND ".join(f"b.{c} IS NOT DISTINCT FROM r.{c}" for c in CONTENT)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE classified AS
        WITH ref AS (
            SELECT 'log' AS origin, falcon_operation_id, {', '.join(CONTENT)}, ingest_id FROM stored
            UNION ALL
            SELECT 'file', falcon_operation_id, {', '.join(CONTENT)}, NULL FROM batch
            WHERE occurrence = 1 AND falcon_operation_id NOT IN (SELECT falcon_operation_id FROM stored)
        )
        SELECT b.row_number, b.falcon_operation_id, r.origin, r.ingest_id AS original,
               CASE WHEN r.origin = 'file' AND b.occurrence = 1 THEN 'new'
                    WHEN {same} THEN 'duplicate' ELSE 'conflict' END AS status,
               {', '.join(f'r.{c} AS stored_{c}' for c in CONTENT)},
               {', '.join(f'b.{c} AS got_{c}' for c in CONTENT)}
        FROM batch b JOIN ref r USING (falcon_operation_id)
    """)
    new = con.sql("""
        SELECT b.* EXCLUDE (occurrence) FROM batch b JOIN classified c USING (row_number)
        WHERE c.status = 'new'
    """).pl()
    counts = dict(con.sql("SELECT status, count(*) FROM classified GROUP BY status").fetchall())
    bad = con.sql("SELECT * FROM classified WHERE status = 'conflict'").pl()
    dups = con.sql("SELECT row_number, TRUE AS dup, original FROM classified WHERE status = 'duplicate'").pl()
    conflicts = reasons_frame([(r["row_number"], "conflicting_duplicate", _conflict(r, source))
                               for r in bad.iter_rows(named=True)])
    return counts, conflicts, new, dups.cast({"original": pl.String})


def _conflict(row: dict, source: str) -> str:
    where = "in the ledger" if row["origin"] == "log" else "earlier in this file"
    diffs = []
    for c in CONTENT:
        old, new = row[f"stored_{c}"], row[f"got_{c}"]
        if old != new:
            if c == "amount_minor":
                old, new = to_major(old, row["stored_currency"]), to_major(new, row["got_currency"])
                c = "amount"
            diffs.append(f"{c} {_show(old)} vs {_show(new)}")
    return (f"falcon_operation_id: {row['falcon_operation_id']!r} already {where} (source {source}) "
            f"with different content: {', '.join(diffs)}")


def _show(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value) if isinstance(value, str) else str(value)


def _fold(parts: list[pl.DataFrame], context: pl.DataFrame) -> pl.DataFrame:
    """The cache's sums per (merchant_id, currency) of these entries, as `balances.fold` gives them.

    Summed per merchant context row first (an integer key), then per merchant and currency.
    """
    amount, settled = pl.col("amount_minor"), pl.col("source") != "CO"
    per_row = pl.concat([p.select("context_row", "source", "type", "amount_minor") for p in parts]).group_by(
        "context_row").agg(
        confirmed_minor=amount.filter(pl.col("source") != "RO").sum().cast(pl.Int64),
        settled_minor=amount.filter(settled).sum().cast(pl.Int64),
        reserved_minor=(-amount.filter(settled & pl.col("type").is_in(RESERVE_TYPES)).sum()).cast(pl.Int64),
        entries=pl.len().cast(pl.Int64),
    )
    keys = context.select("merchant_id", "currency").with_row_index("context_row").with_columns(
        pl.col("context_row").cast(pl.Int64))
    return per_row.join(keys, on="context_row").group_by("merchant_id", "currency").agg(
        pl.col("confirmed_minor", "settled_minor", "reserved_minor", "entries").sum())


def quarantine_id(source: str, file_sha: str, row_number: int | pl.Expr):
    """Deterministic id of a rejected row: its source, file content hash and row number."""
    if isinstance(row_number, pl.Expr):
        return pl.format("{}-{}-{}", pl.lit(source), pl.lit(file_sha[:16]), row_number)
    return f"{source}-{file_sha[:16]}-{row_number}"


def _append_quarantine(ws, con, df, rejects, source, file_name, file_sha, ingest_id, at) -> int:
    """Record rejected rows; a row of a file already recorded is not recorded again."""
    if not len(rejects):
        return 0
    rel = ws.lake.relation(con, LEDGER_QUARANTINE.name)
    seen = con.sql(f"SELECT row_number FROM {rel} WHERE file_sha256 = ? AND source = ?",
                   params=[file_sha, source]).pl()
    fresh = rejects.join(seen, on="row_number", how="anti")
    rows = fresh.join(df.filter(pl.col("row_number").is_in(fresh["row_number"].implode())), on="row_number")
    if not len(rows):
        return 0
    raw = rows.select(pl.struct(INPUT_COLUMNS).struct.json_encode().alias("raw"))["raw"]
    out = rows.select(
        quarantine_id(source, file_sha, pl.col("row_number")).alias("quarantine_id"),
        pl.lit(source).alias("source"), "reason_code", "reason", pl.lit(file_name).alias("file_name"),
        pl.lit(file_sha).alias("file_sha256"), "row_number", "falcon_operation_id",
        pl.lit(ingest_id).alias("ingest_id"),
        pl.lit(at).cast(pl.Datetime("us", "UTC")).alias("quarantined_at"),
    ).with_columns(raw=raw)
    ws.lake.append(LEDGER_QUARANTINE.name, out.to_arrow())
    for code, n in out.group_by("reason_code").len().iter_rows():
        metrics.LEDGER_QUARANTINED.labels(code).inc(n)
    return len(out)


def _resolve(ws, con, source: str, file_sha: str, rows: pl.DataFrame, conflicts: pl.DataFrame,
             ingest_id: str, at: datetime) -> int:
    """Mark quarantined rows of this file that now went in (or were already in) as resolved."""
    q = ws.lake.relation(con, LEDGER_QUARANTINE.name)
    r = ws.lake.relation(con, QUARANTINE_RESOLUTIONS.name)
    open_rows = con.sql(f"""
        SELECT quarantine_id, row_number FROM {q}
        WHERE file_sha256 = ? AND source = ? AND quarantine_id NOT IN (SELECT quarantine_id FROM {r})
    """, params=[file_sha, source]).pl()
    if not len(open_rows):
        return 0
    done = open_rows.join(rows.select("row_number", "valid"), on="row_number").filter(
        pl.col("valid") & ~pl.col("row_number").is_in(conflicts["row_number"].implode()))
    ids = done.select("quarantine_id")
    if not len(ids):
        return 0
    ws.lake.append(QUARANTINE_RESOLUTIONS.name, ids.with_columns(
        resolution=pl.lit("ingested"), ingest_id=pl.lit(ingest_id),
        resolved_at=pl.lit(at).cast(pl.Datetime("us", "UTC")),
    ).to_arrow())
    return len(ids)


def reprocess(ws: Workspace, *, actor: str) -> list[IngestResult]:
    """Retry every unresolved quarantined row (e.g. its merchant context now exists), file by file; the run
    is audited (`ledger_quarantine` / `reprocess`) with `actor` and what it did."""
    con = duckdb.connect()
    q = ws.lake.relation(con, LEDGER_QUARANTINE.name)
    r = ws.lake.relation(con, QUARANTINE_RESOLUTIONS.name)
    pending = con.sql(f"""
        SELECT source, file_name, file_sha256, row_number, raw FROM {q}
        WHERE quarantine_id NOT IN (SELECT quarantine_id FROM {r}) ORDER BY file_sha256, row_number
    """).pl()
    results = []
    for (source, file_name, file_sha), group in pending.group_by(
        "source", "file_name", "file_sha256", maintain_order=True
    ):
        rows = pl.DataFrame([json.loads(x) for x in group["raw"]],
                            schema={c: pl.String for c in INPUT_COLUMNS})
        rows = rows.with_columns(row_number=group["row_number"])
        results.append(ingest_rows(ws, rows, source, file_name, file_sha, write_raw=False))
    with ws.engine.begin() as conn:
        audit.record(conn, actor=actor, entity_type="ledger_quarantine", entity_id="reprocess",
                     action="reprocess",
                     after={"files": len(results), "rows": sum(r.rows for r in results),
                            "resolved": sum(r.resolved for r in results),
                            "still_quarantined": sum(r.quarantined for r in results),
                            "ingest_ids": [r.ingest_id for r in results]})
    return results
