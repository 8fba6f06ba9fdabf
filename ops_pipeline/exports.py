"""Files for people: CSV that is safe to open in a spreadsheet.

A text cell starting with `=`, `+`, `-`, `@`, tab, CR, LF or NUL would be run as a formula by Excel,
LibreOffice or Google Sheets (formula injection). Such cells get a leading single quote, the OWASP
escape that spreadsheets show as plain text; quoting follows RFC 4180. Only text is escaped: numbers
(int, Decimal, and text that is exactly a decimal number such as `-10.00`), dates and booleans are
values, never formulas, and stay numbers in the spreadsheet.

    write_csv(path, ["merchant_id", "available"], rows)
    csv_text(columns, rows)  # the same as a string
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def text(value: Any) -> str:
    """A value as exact text: money (Decimal) without exponent, times in ISO 8601, None empty."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def safe_cell(value: Any) -> str:
    """`value` as CSV cell text; text a spreadsheet would read as a formula gets a leading `'`."""
    if isinstance(value, str):
        formula = value.startswith(FORMULA_STARTS) and not NUMBER.fullmatch(value)
        return "'" + value if formula else value
    return text(value)


def _write_rows(out: TextIO, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([safe_cell(c) for c in columns])
    writer.writerows([safe_cell(v) for v in row] for row in rows)


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    _write_rows(out, columns, rows)
    return out.getvalue()


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as out:
        _write_rows(out, columns, rows)
    return path
