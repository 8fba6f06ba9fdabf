"""Metadata shown in the Dagster UI: row counts and small Markdown previews, money in major units."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import polars as pl

from ops_pipeline.money import to_major

PREVIEW_ROWS = 5
BALANCE_COLUMNS = ("confirmed", "settled", "held", "available")


def markdown_table(df: pl.DataFrame) -> dg.MetadataValue:
    if df.is_empty():
        return dg.MetadataValue.md("_no rows_")
    lines = ["| " + " | ".join(df.columns) + " |", "|" + " --- |" * len(df.columns)]
    for row in df.iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v).replace("|", "\\|") for v in row) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def view_summary(con: duckdb.DuckDBPyConnection, view: str, columns: str, ingest_ids: list[str]) -> dict:
    """Total rows of an analyst view and a preview of the rows these ingests added (sorted: the same
    preview for the same rows)."""
    total = con.sql(f"SELECT count(*) FROM {view}").fetchall()[0][0]
    added = con.sql(
        f"SELECT {columns} FROM {view} WHERE ingest_id IN (SELECT unnest($ids))"
        f" ORDER BY ALL LIMIT {PREVIEW_ROWS}",
        params={"ids": ingest_ids},
    ).pl()
    return {"dagster/row_count": dg.MetadataValue.int(total), "preview": markdown_table(added)}


def balances_table(df: pl.DataFrame) -> dg.MetadataValue:
    """Balance rows with `<name>_minor` columns, shown in major units."""
    names = [n for n in BALANCE_COLUMNS if f"{n}_minor" in df.columns]
    rows = [
        {"merchant_id": r["merchant_id"], "currency": r["currency"],
         **{n: str(to_major(r[f"{n}_minor"], r["currency"])) for n in names}}
        for r in df.head(PREVIEW_ROWS * 2).iter_rows(named=True)
    ]
    columns = ("merchant_id", "currency", *names)
    return markdown_table(pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String)))


def json_value(data) -> dg.MetadataValue:
    """Any rows as JSON metadata (dates and decimals as text)."""
    return dg.MetadataValue.json(json.loads(json.dumps(data, default=str)))
