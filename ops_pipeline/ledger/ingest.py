"""Ingest: validate, deduplicate and split operations, then append them to the log in one commit.

Idempotent by (source, falcon_operation_id). A crash leaves the log as before or after the single
Delta commit; running the same file again completes whatever was not written.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
from sqlalchemy import insert

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
from ops_pipeline.ledger import KINDS, balances, merchants
from ops_pipeline.ledger.reading import file_sha256, read_table
from ops_pipeline.ledger.validation import REQUIRED, combine_reasons, reasons_frame, validate_operations
from ops_pipeline.money import to_major
from ops_pipeline.workspace import Workspace

RAW_TABLES = {"CO": CONFIRMED_OPERATIONS.name, "RO": RECONCILED_OPERATIONS.name}
OP_KEY = "(md5_number_lower(source || ':' || falcon_operation_id) >> 1)::BIGINT"
CONTENT = ("type", "amount_minor", "currency", "operation_date", "external_reference", "psp_id",
           "local_merchant_id", "shop_id")


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


def ingest_file(ws: Workspace, path: Path, kind: str) -> IngestResult:
    """Ingest a CSV, JSONL or Parquet file of confirmed or reconciled operations."""
    if kind not in KINDS:
        raise InvalidInput(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    path = Path(path)
    df = read_table(path, INPUT_COLUMNS, REQUIRED)
    return ingest_rows(ws, df, KINDS[kind], path.name, file_sha256(path))


def ingest_rows(ws: Workspace, df: pl.DataFrame, source: str, file_name: str, file_sha: str,
                write_raw: bool = True) -> IngestResult:
    """Ingest text rows (INPUT_COLUMNS + row_number) that came from the file with hash `file_sha`."""
    started = datetime.now(UTC)
    ingest_id = str(uuid.uuid4())
    context = merchants.current(ws).drop("loaded_at")
    valid, rejects = validate_operations(df, context, ws.settings.timezone)
    with ws.lock("ledger"):
        con = duckdb.connect()
        if write_raw:
            _append_raw(ws, con, df, source, file_name, file_sha, ingest_id, started)
        status, conflicts = _classify(ws, con, valid, source)
        rejects = combine_reasons(pl.concat([rejects, conflicts])) if len(conflicts) else rejects
        before = ws.lake.latest_version(BALANCE_OPERATIONS.name)
        entries = _split(con, ingest_id, started)
        version = before
        if entries.num_rows:
            version = ws.lake.append(BALANCE_OPERATIONS.name, entries)
            if not balances.apply_to_cache(ws, balances.fold(entries), before, version):
                balances.refresh_cache(ws)
        new_q = _append_quarantine(ws, con, df, rejects, source, file_name, file_sha, ingest_id, started)
        done = status.filter(pl.col("status") != "conflict")["row_number"]
        resolved = _resolve(ws, con, source, file_sha, done, ingest_id, started)
    counts = status["status"].value_counts()
    count = dict(zip(counts["status"], counts["count"], strict=True))
    result = IngestResult(
        ingest_id=ingest_id, kind=source, file_name=file_name, rows=len(df), ingested=count.get("new", 0),
        duplicates=count.get("duplicate", 0), quarantined=len(rejects), newly_quarantined=new_q,
        resolved=resolved, entries=entries.num_rows, lake_version=version,
    )
    with ws.engine.begin() as conn:
        conn.execute(insert(ingest_runs).values(
            ingest_id=ingest_id, kind=source, file_name=file_name, file_sha256=file_sha, rows=result.rows,
            ingested=result.ingested, duplicates=result.duplicates, quarantined=result.quarantined,
            lake_version=version, started_at=started, finished_at=datetime.now(UTC),
        ))
    return result


def _append_raw(ws, con, df, source, file_name, file_sha, ingest_id, at) -> None:
    """Raw rows as received, once per file content."""
    table = RAW_TABLES[source]
    rel = ws.lake.relation(con, table)
    if con.execute(f"SELECT count(*) FROM {rel} WHERE file_sha256 = ?", [file_sha]).fetchall()[0][0]:
        return
    raw = df.with_columns(
        ingest_id=pl.lit(ingest_id), received_at=pl.lit(at).cast(pl.Datetime("us", "UTC")),
        file_name=pl.lit(file_name), file_sha256=pl.lit(file_sha),
    )
    ws.lake.append(table, raw.to_arrow())


def _classify(ws, con, valid: pl.DataFrame, source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Mark each valid row new, duplicate (same content as stored or earlier in the file) or conflict.

    Leaves a temp table `new_ops` with the rows to append. Returns (row statuses, conflict reasons).
    """
    log = ws.lake.relation(con, BALANCE_OPERATIONS.name)
    batch = valid.select(
        "row_number", *INPUT_COLUMNS, "amount_minor", pl.col("operation_ts").alias("parsed_date"),
        "merchant_id", "balance_shop_id", "fee_percent_micros", "fee_fixed_minor",
    ).with_columns(source=pl.lit(source))
    con.register("valid_rows", batch.to_arrow())
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE batch AS
        SELECT * EXCLUDE (operation_date, parsed_date), parsed_date AS operation_date, {OP_KEY} AS op_key,
               row_number() OVER (PARTITION BY falcon_operation_id ORDER BY row_number) AS occurrence
        FROM valid_rows
    """)
    cols = ", ".join(CONTENT[1:])
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE stored AS
        WITH hits AS (SELECT DISTINCT op_key FROM {log} WHERE op_key IN (SELECT op_key FROM batch))
        SELECT falcon_operation_id, type, abs(amount_minor) AS amount_minor, {cols.replace('amount_minor, ', '')}
        FROM {log}
        WHERE op_key IN (SELECT op_key FROM hits) AND source = $source AND type <> 'psp_fee'
    """, {"source": source})
    same = " AND ".join(f"b.{c} IS NOT DISTINCT FROM r.{c}" for c in CONTENT)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE classified AS
        WITH ref AS (
            SELECT 'log' AS origin, falcon_operation_id, {', '.join(CONTENT)} FROM stored
            UNION ALL
            SELECT 'file', falcon_operation_id, {', '.join(CONTENT)} FROM batch
            WHERE occurrence = 1 AND falcon_operation_id NOT IN (SELECT falcon_operation_id FROM stored)
        )
        SELECT b.row_number, b.falcon_operation_id, r.origin,
               CASE WHEN r.origin = 'file' AND b.occurrence = 1 THEN 'new'
                    WHEN {same} THEN 'duplicate' ELSE 'conflict' END AS status,
               {', '.join(f'r.{c} AS stored_{c}' for c in CONTENT)},
               {', '.join(f'b.{c} AS got_{c}' for c in CONTENT)}
        FROM batch b JOIN ref r USING (falcon_operation_id)
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE new_ops AS
        SELECT b.* FROM batch b JOIN classified c USING (row_number) WHERE c.status = 'new'
    """)
    status = con.sql("SELECT row_number, status FROM classified").pl()
    bad = con.sql("SELECT * FROM classified WHERE status = 'conflict'").pl()
    return status, reasons_frame([(r["row_number"], "conflicting_duplicate", _conflict(r, source))
                                  for r in bad.iter_rows(named=True)])


def _conflict(row: dict, source: str) -> str:
    where = "in the ledger" if row["origin"] == "log" else "earlier in this file"
    diffs = []
    for c in CONTENT:
        old, new = row[f"stored_{c}"], row[f"got_{c}"]
        if old != new:
            if c == "amount_minor":
                c, old, new = "amount", to_major(old, row["stored_currency"]), to_major(new, row["got_currency"])
            diffs.append(f"{c} {_show(old)} vs {_show(new)}")
    return (f"falcon_operation_id: {row['falcon_operation_id']!r} already {where} (source {source}) "
            f"with different content: {', '.join(diffs)}")


def _show(value) -> str:
    return value.isoformat() if isinstance(value, datetime) else repr(value) if isinstance(value, str) else str(value)


def _split(con, ingest_id: str, recorded_at: datetime) -> pa.Table:
    """Captures: +amount and, if the fee is not zero, -fee as psp_fee; refunds: -amount."""
    con.execute("SET TimeZone = 'UTC'")
    common = ("currency, falcon_operation_id, source, operation_date, $recorded_at AS recorded_at, "
              "local_merchant_id, shop_id, balance_shop_id, psp_id, merchant_id, op_key, $ingest_id AS ingest_id")
    return con.sql(f"""
        SELECT uuidv7()::VARCHAR AS uuid, external_reference,
               CASE WHEN type = 'refund' THEN -amount_minor ELSE amount_minor END AS amount_minor,
               type, {common}
        FROM new_ops
        UNION ALL
        SELECT uuidv7()::VARCHAR, external_reference, -fee, 'psp_fee', {common}
        FROM (SELECT *, ((amount_minor::HUGEINT * fee_percent_micros + 50000000) // 100000000)::BIGINT
                        + fee_fixed_minor AS fee
              FROM new_ops WHERE type = 'capture')
        WHERE fee <> 0
    """, params={"recorded_at": recorded_at, "ingest_id": ingest_id}).to_arrow_table()


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
    rows = rejects.join(seen, on="row_number", how="anti").join(df, on="row_number")
    if not len(rows):
        return 0
    raw = rows.select(pl.struct(INPUT_COLUMNS).struct.json_encode().alias("raw"))["raw"]
    out = rows.select(
        quarantine_id(source, file_sha, pl.col("row_number")).alias("quarantine_id"),
        pl.lit(source).alias("source"), "reason_code", "reason", pl.lit(file_name).alias("file_name"),
        pl.lit(file_sha).alias("file_sha256"), "row_number", "falcon_operation_id",
        pl.lit(ingest_id).alias("ingest_id"), pl.lit(at).cast(pl.Datetime("us", "UTC")).alias("quarantined_at"),
    ).with_columns(raw=raw)
    ws.lake.append(LEDGER_QUARANTINE.name, out.to_arrow())
    return len(out)


def _resolve(ws, con, source: str, file_sha: str, done: pl.Series, ingest_id: str, at: datetime) -> int:
    """Mark quarantined rows of this file that now went in (or were already in) as resolved."""
    q = ws.lake.relation(con, LEDGER_QUARANTINE.name)
    r = ws.lake.relation(con, QUARANTINE_RESOLUTIONS.name)
    con.register("done_rows", pl.DataFrame({"row_number": done}).to_arrow())
    ids = con.sql(f"""
        SELECT quarantine_id FROM {q}
        WHERE file_sha256 = ? AND source = ? AND row_number IN (SELECT row_number FROM done_rows)
          AND quarantine_id NOT IN (SELECT quarantine_id FROM {r})
    """, params=[file_sha, source]).pl()
    if not len(ids):
        return 0
    ws.lake.append(QUARANTINE_RESOLUTIONS.name, ids.with_columns(
        resolution=pl.lit("ingested"), ingest_id=pl.lit(ingest_id),
        resolved_at=pl.lit(at).cast(pl.Datetime("us", "UTC")),
    ).to_arrow())
    return len(ids)


def reprocess(ws: Workspace) -> list[IngestResult]:
    """Retry every unresolved quarantined row (e.g. its merchant context now exists), file by file."""
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
        rows = pl.DataFrame([json.loads(x) for x in group["raw"]], schema={c: pl.String for c in INPUT_COLUMNS})
        rows = rows.with_columns(row_number=group["row_number"])
        results.append(ingest_rows(ws, rows, source, file_name, file_sha, write_raw=False))
    return results
