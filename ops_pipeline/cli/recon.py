"""`ops-pipeline recon ...`: run a reconciliation for a business date, list its breaks, resolve them."""

from __future__ import annotations

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.options import ACTOR, FORMAT, parse_date
from ops_pipeline.cli.output import emit
from ops_pipeline.errors import InvalidInput

SUMMARY_COLUMNS = ("status", "currency", "count", "internal", "external", "difference")


@cli.group("recon")
def recon_group() -> None:
    """Reconciliations (settlement: CO vs RO; payouts: vs the bank statement), breaks, resolution."""


@recon_group.command("run")
@click.option("--date", "day", required=True, help="Business date (YYYY-MM-DD, OPS_TIMEZONE).")
@click.option("--name", default="settlement", show_default=True, help="Which reconciliation.")
@click.option("--dry-run", is_flag=True, help="Match and print, write nothing.")
@ACTOR
@FORMAT
@pass_ctx
def recon_run(ctx: Context, day: str, name: str, dry_run: bool, actor: str, fmt: str) -> None:
    """Reconcile one business date (a re-run supersedes earlier runs of the date); prints counts and amounts
    per status and currency."""
    from ops_pipeline.money import to_major
    from ops_pipeline.recon.registry import RECONS

    if name not in RECONS:
        raise InvalidInput(f"name: {name!r} is not one of {', '.join(sorted(RECONS))}")
    summary = RECONS[name](ctx.ws, parse_date(day), actor=actor, dry_run=dry_run)
    totals: dict[tuple[str, str], list[int]] = {}
    for r in summary.rows:
        t = totals.setdefault((r.status, r.currency), [0, 0, 0])
        t[0], t[1], t[2] = t[0] + 1, t[1] + r.internal_amount_minor, t[2] + r.external_amount_minor
    if fmt == "table":
        written = f"run {summary.run_id}" if summary.run_id else "dry run, nothing written"
        click.echo(f"{name} {summary.business_date}: {len(summary.rows)} rows ({written})")
    emit(SUMMARY_COLUMNS, ([s, c, n, to_major(i, c), to_major(e, c), to_major(i - e, c)]
                           for (s, c), (n, i, e) in sorted(totals.items())), fmt)


@recon_group.command("breaks")
@click.option("--status", help="unmatched_internal, unmatched_external or matched_with_difference.")
@click.option("--older-than", "older_than", type=int, help="Only business dates more than DAYS days ago.")
@FORMAT
@pass_ctx
def recon_breaks(ctx: Context, status: str | None, older_than: int | None, fmt: str) -> None:
    """Breaks of the latest runs (amounts in minor units); BREAK_ID is what `recon resolve` takes."""
    from ops_pipeline.recon import breaks

    found = breaks.open_breaks(ctx.ws, status=status, older_than_days=older_than)
    rows = ([",".join(v) if isinstance(v, list) else v for v in b.values()] for b in found)
    emit(breaks.COLUMNS, rows, fmt)


@recon_group.command("resolve")
@click.argument("break_id")
@click.option("--action", required=True, type=click.Choice(["match", "unmatch", "write-off"]))
@click.option("--note", required=True, help="Why (kept in the audit trail).")
@click.option("--with", "other_id", help="match: the unmatched break of the other side to pair it with.")
@ACTOR
@pass_ctx
def recon_resolve(ctx: Context, break_id: str, action: str, note: str, other_id: str | None,
                  actor: str) -> None:
    """Decide on a break; the next run of its date applies the decision."""
    from ops_pipeline.recon import breaks

    decision_id = breaks.resolve(ctx.ws, break_id, action, note, actor, other_id)
    click.echo(f"decision {decision_id}: {action} {break_id}; applied at the next run of its date")


@recon_group.command("runs")
@click.option("--name", help="Only this reconciliation.")
@click.option("--date", "day", help="Only this business date (YYYY-MM-DD).")
@click.option("--latest", is_flag=True, help="Only the runs in force (the latest of each date).")
@click.option("--limit", type=int, default=100, show_default=True)
@FORMAT
@pass_ctx
def recon_runs(ctx: Context, name: str | None, day: str | None, latest: bool, limit: int, fmt: str) -> None:
    """Runs per reconciliation and business date, newest first, with row counts per status."""
    from ops_pipeline.recon import runs

    found = runs.list_runs(ctx.ws, recon=name, business_date=parse_date(day) if day else None,
                           latest_only=latest, limit=limit)
    emit(runs.COLUMNS, ([r[c] for c in runs.COLUMNS] for r in found), fmt)


@recon_group.command("reversals")
@ACTOR
@FORMAT
@pass_ctx
def recon_reversals(ctx: Context, actor: str, fmt: str) -> None:
    """Apply the statements' payout reversals (RD): each returned payout is credited back once; the others
    are listed as breaks."""
    from ops_pipeline.money import to_major
    from ops_pipeline.recon.payouts import apply_reversals

    emit(("entry", "reference", "payout", "amount", "currency", "outcome", "reason"),
         ([r.entry_id, r.reference, r.payout_id, to_major(r.amount_minor, r.currency), r.currency, r.outcome,
           r.reason] for r in apply_reversals(ctx.ws, actor)), fmt)
