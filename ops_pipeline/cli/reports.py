"""`ops-pipeline reports ...`: build a finance report for a business date or a month; list the built ones."""

from __future__ import annotations

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.options import FORMAT
from ops_pipeline.cli.output import emit
from ops_pipeline.errors import InvalidInput


@cli.group("reports")
def reports_group() -> None:
    """Finance reports (HTML and XLSX) per business date and per month, under OPS_HOME/reports."""


@reports_group.command("build")
@click.option("--date", "day", help="Business date (YYYY-MM-DD, OPS_TIMEZONE).")
@click.option("--month", help="Month (YYYY-MM, OPS_TIMEZONE).")
@FORMAT
@pass_ctx
def reports_build(ctx: Context, day: str | None, month: str | None, fmt: str) -> None:
    """Build (or rebuild, replacing the files) one report; prints its summary and files."""
    from ops_pipeline.money import to_major
    from ops_pipeline.reports import build

    if (day is None) == (month is None):
        raise InvalidInput("date, month: give exactly one of --date YYYY-MM-DD and --month YYYY-MM")
    built = build.build_day(ctx.ws, day) if day else build.build_month(ctx.ws, month)
    if fmt == "table":
        for path in built.files:
            click.echo(f"wrote {path}")
        if built.kind == "monthly":
            click.echo(f"balances: {built.balances}, not tying to the ledger: {built.untied}")
    emit(("recon", "currency", "status", "count", "internal", "external", "difference"),
         ([s.recon, s.currency, s.status, s.count, to_major(s.internal_minor, s.currency),
           to_major(s.external_minor, s.currency), to_major(s.difference_minor, s.currency)]
          for s in built.summary), fmt)


@reports_group.command("list")
@FORMAT
@pass_ctx
def reports_list(ctx: Context, fmt: str) -> None:
    """Built reports: daily, then monthly, each newest period first."""
    from ops_pipeline.reports import build

    found = build.list_reports(ctx.ws)
    emit(("kind", "period", "format", "size", "built_at", "path"),
         ([f.kind, f.period, f.format, f.size, f.built_at, str(f.path)] for f in found), fmt)
