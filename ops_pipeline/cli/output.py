"""Printing results: aligned tables for people, CSV (spreadsheet-safe) and JSON for programs; progress only
on a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence

import click

from ops_pipeline.exports import csv_text
from ops_pipeline.exports import text as _text


def _json(value):
    """Numbers, booleans and null stay themselves; money (Decimal) and times become exact text."""
    return value if value is None or isinstance(value, bool | int | str) else _text(value)


def emit(columns: Sequence[str], rows: Iterable[Sequence], fmt: str = "table") -> None:
    if fmt == "json":
        out = [{c: _json(v) for c, v in zip(columns, row, strict=True)} for row in rows]
        click.echo(json.dumps(out, indent=2))
        return
    if fmt == "csv":  # opened in spreadsheets: text that looks like a formula is escaped
        click.echo(csv_text(columns, rows), nl=False)
    else:
        rows = [[_text(v) for v in row] for row in rows]
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
        click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
        for r in rows:
            click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def progress(items: Sequence, label: str):
    """A progress bar on a terminal; the plain sequence when piped."""
    if sys.stderr.isatty() and len(items) > 1:
        return click.progressbar(items, label=label, file=sys.stderr)
    return _Quiet(items)


class _Quiet:
    def __init__(self, items):
        self.items = items

    def __enter__(self):
        return self.items

    def __exit__(self, *exc):
        return False
