"""Read an input file (CSV, JSONL or Parquet) into text columns, exactly as received, with row numbers.

A file that cannot be read is refused with one line naming the file, the row and the problem.
"""

from __future__ import annotations

import csv
import hashlib
import json
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
    except OSError as exc:
        raise InvalidInput(f"file: {path.name!r} cannot be read: {exc.strerror or exc}") from exc
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise InvalidInput(f"file: {path.name!r} {_problem(path, exc)}") from exc
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


def _problem(path: Path, exc: Exception) -> str:
    """Where and why the file is unreadable, in a few words: the row found by a plain re-read, if any."""
    finders = {".csv": _csv_problem, ".jsonl": _jsonl_problem, ".ndjson": _jsonl_problem}
    finder = finders.get(path.suffix.lower())
    found = finder(path) if finder else None
    if found:
        return found
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return f"cannot be read: {first}"


def _csv_problem(path: Path) -> str | None:
    """The first record with more cells than the header, a stray quote or a quote never closed."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, strict=True)
        width, row, line = None, 0, 1
        try:
            for cells in reader:
                if width is None:
                    width = len(cells)
                elif len(cells) > width:
                    return f"row {row}, line {line}: {len(cells)} cells, the header has {width}"
                row, line = row + 1, reader.line_num + 1
        except csv.Error as exc:
            where = f"row {row}, line {line}" if width is not None else f"header, line {line}"
            if "end of data" in str(exc) or "unexpected end" in str(exc):
                return f"{where}: a quoted cell is never closed (unbalanced quote)"
            return f"{where}: a quote inside a cell is not escaped ({exc})"
    return None


def _jsonl_problem(path: Path) -> str | None:
    """The first line that is not a JSON object."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                return f"row {number}: not valid JSON ({exc})"
            if not isinstance(value, dict):
                return f"row {number}: not a JSON object"
    return None
