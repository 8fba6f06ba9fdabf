"""`ops-pipeline fundout config|run|batch|batches|cashout|payouts` and `ops-pipeline notify dispatch`.

Results print as JSON with the domain's field names (snake_case); amounts and times as exact text.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.options import ACTOR, FORMAT, parse_time
from ops_pipeline.cli.output import emit
from ops_pipeline.fundout import batch, cashout, config
from ops_pipeline.notify import dispatch

PAYOUT_COLUMNS = ["id", "kind", "currency", "amount", "status", "slot", "bank_payout_id", "error"]


def _echo(result) -> None:
    """A domain result (a dataclass) as JSON; a payout also shows its amount in major units."""
    plain = dataclasses.asdict(result)
    if hasattr(result, "amount"):
        plain["amount"] = result.amount
    click.echo(json.dumps(plain, indent=2, default=_exact_text))


def _exact_text(value) -> str:
    return format(value, "f") if isinstance(value, Decimal) else value.isoformat()


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
        _echo(config.get_config(ctx.ws, business_id))
        return
    body = {}
    for change in changes:
        name, sep, value = change.partition("=")
        if not sep:
            raise click.UsageError(f"--set: {change!r} is not FIELD=VALUE")
        body[name] = {"true": True, "false": False}.get(value.lower(), value) if name == "enabled" else value
    made = config.put_config(ctx.ws, business_id, body, f"cli:{actor}")
    _echo(made)


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
@click.argument("batch_id", type=click.IntRange(1, batch.MAX_ID))
@pass_ctx
def fundout_batch(ctx: Context, batch_id) -> None:
    """Status, counts and amounts of one batch."""
    _echo(batch.get_batch(ctx.ws, batch_id))


@fundout_group.command("batches")
@click.option("--from", "slot_from", help="Slots at or after this time (ISO 8601).")
@click.option("--to", "slot_to", help="Slots at or before this time (ISO 8601).")
@click.option("--status", type=click.Choice(batch.STATUSES))
@click.option("--limit", type=click.IntRange(1, batch.MAX_PAGE), default=50, show_default=True)
@FORMAT
@pass_ctx
def fundout_batches(ctx: Context, slot_from, slot_to, status, limit, fmt) -> None:
    """Batches, newest slot first: status and counts."""
    tz = ctx.ws.settings.tz
    page = batch.list_batches(
        ctx.ws,
        slot_from=parse_time(slot_from, tz) if slot_from else None,
        slot_to=parse_time(slot_to, tz) if slot_to else None,
        status=status,
        limit=limit,
    )
    columns = ["id", "slot", "status", "due", "paid", "skipped", "failed", "pending"]
    emit(
        columns,
        [[b.id, b.slot, b.status, *(getattr(b.summary, c) for c in columns[3:])] for b in page.batches],
        fmt,
    )


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
    _echo(payout)
    if payout.status == "failed":
        raise click.ClickException(f"cash-out failed: {payout.error}")


@fundout_group.command("payouts")
@click.argument("business_id")
@FORMAT
@pass_ctx
def fundout_payouts(ctx: Context, business_id, fmt) -> None:
    """Recent payouts of BUSINESS_ID, newest first."""
    found = cashout.list_payouts(ctx.ws, business_id)
    emit(PAYOUT_COLUMNS, [[getattr(p, c) for c in PAYOUT_COLUMNS] for p in found], fmt)


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
