"""`ops-pipeline invoices compute|commissions|issue|list|show|credit|match|aging|remind`: gift-card
commissions per sale, the monthly invoices to distributors, their payments and reminders. Amounts are major
units; months are YYYY-MM."""

from __future__ import annotations

import json
from datetime import date, datetime

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.options import ACTOR, FORMAT
from ops_pipeline.cli.output import emit
from ops_pipeline.giftcards import commission_lines, invoice_files, invoice_payments, invoices
from ops_pipeline.money import to_major

INVOICE_COLUMNS = [
    "number",
    "kind",
    "status",
    "party_id",
    "month",
    "currency",
    "sales",
    "total",
    "paid",
    "outstanding",
    "issued_on",
    "due_on",
]
DAY = click.DateTime(formats=["%Y-%m-%d"])


def _today(ctx: Context) -> date:
    return datetime.now(ctx.ws.settings.tz).date()


@cli.group("invoices")
def invoices_group() -> None:
    """Gift-card commissions and invoices: compute, issue, credit notes, payments, aging, reminders."""


@invoices_group.command("compute")
@click.argument("first", type=DAY)
@click.argument("last", type=DAY, required=False)
@pass_ctx
def compute(ctx: Context, first: datetime, last: datetime | None) -> None:
    """Compute the commission lines of the days FIRST..LAST (one month at most; default: FIRST only)."""
    done = commission_lines.compute_days(ctx.ws, first.date(), (last or first).date())
    click.echo(
        f"{done.first}..{done.last}: {done.sales:,} sales, commission {done.commission_minor:,} and "
        f"discount {done.discount_minor:,} minor units"
    )


@invoices_group.command("commissions")
@click.argument("month")
@FORMAT
@pass_ctx
def commissions(ctx: Context, month: str, fmt: str) -> None:
    """A MONTH's commissions per distributor and program (with the whole-month tier adjustments)."""
    rows = invoices.month_summary(ctx.ws, invoices.parse_month(month)).to_dicts()
    amounts = ("face_value_minor", "discount_minor", "commission_minor", "adjustment_minor")
    emit(
        ["party_id", "program_id", "currency", "sales", "face_value", "discount", "commission", "adjustment"],
        (
            [
                r["party_id"],
                r["program_id"],
                r["currency"],
                r["sales"],
                *(str(to_major(r[k], r["currency"])) for k in amounts),
            ]
            for r in rows
        ),
        fmt,
    )


@invoices_group.command("issue")
@click.argument("month")
@click.option("--on", "issued_on", type=DAY, help="Issue date (default: today).")
@ACTOR
@pass_ctx
def issue(ctx: Context, month: str, issued_on: datetime | None, actor: str) -> None:
    """Issue the invoices of MONTH not issued yet, with their HTML, PDF and XLSX files."""
    first = invoices.parse_month(month)
    numbers = invoices.issue_month(ctx.ws, first, actor, on=issued_on.date() if issued_on else None)
    invoice_files.write_month(ctx.ws, first)
    click.echo(f"{len(numbers)} invoices issued" + (f": {numbers[0]} .. {numbers[-1]}" if numbers else ""))
    click.echo(f"files: {invoice_files.folder(ctx.ws, first)}")


@invoices_group.command("list")
@click.option("--month")
@click.option("--party", "party_id")
@click.option("--kind", type=click.Choice(["invoice", "credit_note"]))
@click.option("--after", help="The last number of the previous page.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@FORMAT
@pass_ctx
def list_(
    ctx: Context,
    month: str | None,
    party_id: str | None,
    kind: str | None,
    after: str | None,
    limit: int,
    fmt: str,
) -> None:
    """Invoices and credit notes in number order."""
    found = invoices.list_invoices(
        ctx.ws,
        month=invoices.parse_month(month) if month else None,
        party_id=party_id,
        kind=kind,
        after=after,
        limit=limit,
    )
    emit(INVOICE_COLUMNS, ([invoices.view(i)[c] for c in INVOICE_COLUMNS] for i in found), fmt)


@invoices_group.command("show")
@click.argument("number")
@pass_ctx
def show(ctx: Context, number: str) -> None:
    """One invoice or credit note, with its lines and files."""
    found = invoices.get(ctx.ws, number)
    files = {k: str(p) for k, p in invoice_files.paths(ctx.ws, found).items() if p.exists()}
    click.echo(json.dumps({**invoices.view(found), "files": files}, indent=2))


@invoices_group.command("credit")
@click.argument("number")
@click.argument("amount")
@click.option("--reason", required=True)
@ACTOR
@pass_ctx
def credit(ctx: Context, number: str, amount: str, reason: str, actor: str) -> None:
    """Issue a credit note of AMOUNT (major units) against invoice NUMBER."""
    note = invoices.credit_note(ctx.ws, number, amount, reason, actor)
    invoice_files.write_month(ctx.ws, note.month)
    click.echo(
        f"{note.number}: {to_major(-note.total_minor, note.currency)} {note.currency} credited on {number}"
    )


@invoices_group.command("match")
@ACTOR
@pass_ctx
def match(ctx: Context, actor: str) -> None:
    """Match the loaded bank statements' credits to invoices (by the invoice number and the amount)."""
    done = invoice_payments.match(ctx.ws, actor)
    paid = ", ".join(f"{to_major(m, c)} {c}" for c, m in sorted(done.amount_minor.items())) or "nothing"
    click.echo(f"{done.matched} payments matched ({paid}); {len(done.unmatched)} credits left for ops")
    for u in done.unmatched:
        click.echo(f"  {u['statement_id'][:12]}#{u['sequence']}: {u['reason']}")


@invoices_group.command("aging")
@click.option("--on", type=DAY, help="Default: today.")
@FORMAT
@pass_ctx
def aging(ctx: Context, on: datetime | None, fmt: str) -> None:
    """Unpaid invoices by days since issue: 0-30, 31-60, 61-90, >90."""
    rows = invoice_payments.aging(ctx.ws, on.date() if on else _today(ctx))
    emit(
        ["currency", "bucket", "invoices", "outstanding"],
        ([r.currency, r.bucket, r.invoices, str(to_major(r.outstanding_minor, r.currency))] for r in rows),
        fmt,
    )


@invoices_group.command("remind")
@click.option("--on", type=DAY, help="Default: today.")
@ACTOR
@pass_ctx
def remind(ctx: Context, on: datetime | None, actor: str) -> None:
    """Send the reminders of overdue invoices through the outbox (once per invoice and level)."""
    sent = invoice_payments.remind(ctx.ws, on.date() if on else _today(ctx), actor)
    click.echo(f"{len(sent)} reminders sent" + "".join(f"\n  {n}: level {lv}" for n, lv in sent))
