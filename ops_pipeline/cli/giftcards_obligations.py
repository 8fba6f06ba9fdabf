"""`ops-pipeline obligations compute|list|show|pay|confirm`: what is owed to gift-card principals
(`ops_pipeline.giftcards.obligations`). Paying one is a `principal_obligation_payment` job (`pay` creates
it for the amount owed; a second person approves it with `jobs approve`)."""

from __future__ import annotations

import json

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.options import ACTOR, FORMAT
from ops_pipeline.cli.output import emit
from ops_pipeline.giftcards import obligations
from ops_pipeline.giftcards.records import MAX_PAGE

COLUMNS = ["obligation_id", "principal_id", "period_start", "period_end", "currency", "vouchers", "gross",
           "commission", "discount", "amount", "status", "due_on"]
DAY = click.DateTime(["%Y-%m-%d"])


def _emit(rows: list[dict], fmt: str) -> None:
    emit(COLUMNS, ([r[c] for c in COLUMNS] for r in rows), fmt)


@cli.group("obligations")
def obligations_group() -> None:
    """What is owed to gift-card principals: compute, list, show, pay, confirm the transfers."""


@obligations_group.command("compute")
@click.argument("principal_id")
@click.option("--from", "start", type=DAY, required=True, help="First day of the period (OPS_TIMEZONE).")
@click.option("--to", "end", type=DAY, required=True, help="Last day of the period.")
@ACTOR
@FORMAT
@pass_ctx
def compute(ctx: Context, principal_id: str, start, end, actor: str, fmt: str) -> None:
    """Compute what PRINCIPAL_ID is owed for the redemptions of a period, per currency (idempotent)."""
    _emit(obligations.compute(ctx.ws, principal_id, start.date(), end.date(), actor), fmt)


@obligations_group.command("list")
@click.option("--principal", help="Only this principal's.")
@click.option("--status", type=click.Choice(obligations.STATUSES))
@click.option("--after", help="The last id of the previous page.")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=50, show_default=True)
@FORMAT
@pass_ctx
def list_obligations(ctx: Context, principal, status, after, limit, fmt) -> None:
    """Obligations, by id."""
    found, next_after = obligations.list_obligations(ctx.ws, principal_id=principal, status=status,
                                                     after=after, limit=limit)
    _emit(found, fmt)
    if next_after is not None and fmt == "table":
        click.echo(f"more: --after {next_after}", err=True)


@obligations_group.command("show")
@click.argument("obligation_id")
@pass_ctx
def show(ctx: Context, obligation_id: str) -> None:
    """One obligation with its transfer, statement entry and note."""
    click.echo(json.dumps(obligations.get(ctx.ws, obligation_id), indent=2))


@obligations_group.command("pay")
@click.argument("obligation_id")
@ACTOR
@pass_ctx
def pay(ctx: Context, obligation_id: str, actor: str) -> None:
    """Create the payment job of an obligation, for the amount it says is owed (it awaits approval)."""
    from ops_pipeline.jobqueue import service

    o = obligations.get(ctx.ws, obligation_id)
    job, _ = service.create_job(ctx.ws, type="principal_obligation_payment", actor=actor, attributes={
        "obligation_id": obligation_id, "currency": o["currency"], "amount": o["amount"]})
    click.echo(f"job {job.id}: {job.type} {job.state} ({o['amount']} {o['currency']} to {o['principal_id']})")


@obligations_group.command("confirm")
@click.argument("obligation_ids", nargs=-1)
@ACTOR
@FORMAT
@pass_ctx
def confirm(ctx: Context, obligation_ids: tuple[str, ...], actor: str, fmt: str) -> None:
    """Confirm sent obligations (all, or OBLIGATION_IDS): paid once the bank completed the transfer and a
    loaded statement shows it; a failure or a mismatch opens a ticket."""
    found = obligations.confirm(ctx.ws, actor, obligation_ids or None)
    emit(["obligation_id", "outcome", "detail"], ((c.obligation_id, c.outcome, c.detail) for c in found), fmt)
