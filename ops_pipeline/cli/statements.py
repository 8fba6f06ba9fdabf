"""`ops-pipeline statements ...`: bank statement intake."""

from __future__ import annotations

from pathlib import Path

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.options import ACTOR
from ops_pipeline.errors import InvalidInput
from ops_pipeline.statements.intake import load_statement


@cli.group("statements")
def statements_group() -> None:
    """Bank statements: load SWIFT MT940 and ISO 20022 camt.053 files."""


@statements_group.command("load")
@click.argument("file", type=click.Path(path_type=Path))
@ACTOR
@pass_ctx
def statements_load(ctx: Context, file: Path, actor: str) -> None:
    """Load FILE's entries into the lake table bank_statement_entries (a file loaded before: no-op)."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"file: {str(file)!r} cannot be read ({exc.strerror})") from None
    r = load_statement(ctx.ws, data, file.name, f"cli:{actor}")
    if r.already_loaded:
        click.echo(f"{file.name}: statement {r.statement_id[:12]} already loaded, nothing to do")
    else:
        click.echo(f"{file.name}: {r.format} statement {r.statement_id[:12]}, {r.entries} entries loaded")
