"""`ops-pipeline fundout config|run|batch|cashout|payouts` and `ops-pipeline notify dispatch`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.options import ACTOR, FORMAT, parse_time
from ops_pipeline.cli.output import emit
from ops_pipeline.fundout import batch, cashout, config
from ops_pipeline.notify import dispatch

PAYOUT_COLUMNS = ["payoutId", "kind", "currency", "amount", "status", "slot", "bankPayoutId", "error"]


def _echo(value: dict) -> None:
    click.echo(json.dumps(value, indent=2))


@cli.group("fundout")
def fundout_group() -> None:
    """Auto fund-out: per-business schedules that pay out all but a minimum balance; manual cash-out."""


@fundout_group.command("config")
@click.argument("business_id")
@click.option(
    "--set",
    "changes",
    multiple=True,
    metavar="FIELD=VALUE",
    help="freqType, day, hour, minimumBalance, enabled, timezone, notifyEmail; repeatable. "
    "Creates the configuration if there is none.",
)
@ACTOR
@pass_ctx
def fundout_config(ctx: Context, business_id, changes, actor) -> None:
    """Show, create or change the fund-out configuration of BUSINESS_ID."""
    ctx.ws.init()
    if not changes:
        _echo(config.get_config(ctx.ws, business_id).to_api())
        return
    body = {}
    for change in changes:
        name, sep, value = change.partition("=")
        if not sep:
            raise click.UsageError(f"--set: {change!r} is not FIELD=VALUE")
        body[name] = {"true": True, "false": False}.get(value.lower(), value) if name == "enabled" else value
    made = config.put_config(ctx.ws, business_id, body, f"cli:{actor}")
    _echo(made.to_api())


@fundout_group.command("run")
@click.option("--at", "at", help="A time in the slot to run (ISO 8601; default now). Runs that slot alone.")
@click.option(
    "--due", is_flag=True, help="Run like the hourly schedule: missed slots of the last 24 h, then now."
)
@ACTOR
@pass_ctx
def fundout_run(ctx: Context, at, due, actor) -> None:
    """Run the fund-out batch of one hourly slot; exactly once per business, currency and slot."""
    ctx.ws.init()
    when = parse_time(at, ctx.ws.settings.tz) if at else datetime.now(UTC)
    done = (
        batch.run_due(ctx.ws, f"cli:{actor}", now=when)
        if due
        else [batch.run_slot(ctx.ws, when, f"cli:{actor}")]
    )
    for report in done:
        _echo(report)


@fundout_group.command("batch")
@click.argument("batch_id", type=int)
@pass_ctx
def fundout_batch(ctx: Context, batch_id) -> None:
    """Status, counts and amounts of one batch."""
    _echo(batch.get_batch(ctx.ws, batch_id))


@fundout_group.command("cashout")
@click.argument("business_id")
@click.argument("amount")
@click.option("--currency", help="ISO 4217; optional when the business has one currency.")
@click.option("--idempotency-key", help="The same key again returns the first cash-out.")
@ACTOR
@pass_ctx
def fundout_cashout(ctx: Context, business_id, amount, currency, idempotency_key, actor) -> None:
    """Pay AMOUNT of BUSINESS_ID's available balance now (ignores the minimum balance)."""
    ctx.ws.init()
    payout = cashout.cashout(ctx.ws, business_id, amount, currency, f"cli:{actor}", idempotency_key)
    _echo(payout.to_api())
    if payout.status == "failed":
        raise click.ClickException(f"cash-out failed: {payout.error}")


@fundout_group.command("payouts")
@click.argument("business_id")
@FORMAT
@pass_ctx
def fundout_payouts(ctx: Context, business_id, fmt) -> None:
    """Recent payouts of BUSINESS_ID, newest first."""
    rows = [p.to_api() for p in cashout.list_payouts(ctx.ws, business_id)]
    emit(PAYOUT_COLUMNS, [[r[c] for c in PAYOUT_COLUMNS] for r in rows], fmt)


@cli.group("notify")
def notify_group() -> None:
    """Notifications: the outbox, delivered by email (OPS_SMTP_URL) and webhook (OPS_WEBHOOK_URL)."""


@notify_group.command("dispatch")
@click.option("--limit", default=1000, show_default=True, help="At most this many outbox rows.")
@pass_ctx
def notify_dispatch(ctx: Context, limit) -> None:
    """Deliver due notifications once; prints counts by outcome."""
    ctx.ws.init()
    result = dispatch(ctx.ws, limit=limit)
    click.echo(" ".join(f"{k}={v}" for k, v in result.counts.items()))
