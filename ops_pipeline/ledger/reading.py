"""Read an input file (CSV, JSONL or Parquet) into text columns, exactly as received, with row numbers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from ops_pipeline.errors import InvalidInput

READERS = {
    ".csv": lambda p: pl.read_csv(p, infer_schema=False),
    ".jsonl": lambda p: pl.read_ndjson(p, infer_schema_length=None),
    ".ndjson": lambda p: pl.read_ndjson(p, infer_schema_length=None),
    ".parquet": pl.read_parquet,
}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_table(path: Path, columns: tuple[str, ...], required: tuple[str, ...]) -> pl.DataFrame:
    """Columns `columns` as strings plus `row_number` (1-based); a missing required column is an error."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InvalidInput(f"file: {path.name!r} has an unknown type; use .csv, .jsonl or .parquet")
    if not path.exists():
        raise InvalidInput(f"file: {str(path)!r} does not exist")
    try:
        df = reader(path)
    except pl.exceptions.PolarsError as exc:
        raise InvalidInput(f"file: {path.name!r} cannot be read: {exc}") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InvalidInput(f"file: {path.name!r} lacks column(s) {', '.join(map(repr, missing))}")
    return df.select(
        [_as_text(df, c).alias(c) if c in df.columns else pl.lit(None, pl.String).alias(c) for c in columns]
    ).with_row_index("row_number", offset=1).with_columns(pl.col("row_number").cast(pl.Int64))


def _as_text(df: pl.DataFrame, name: str) -> pl.Expr:
    """Text as received; typed Parquet/JSON values become their exact textual form."""
    dtype = df.schema[name]
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone:
            return col.dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%dT%H:%M:%S%.f+00:00")
        return col.dt.to_string("%Y-%m-%dT%H:%M:%S%.f")
    if isinstance(dtype, pl.Date):
        return col.dt.to_string("%Y-%m-%d")
    return col.cast(pl.String)
