"""`ops-pipeline giftcards create|list|show|update|attach|restriction|assign|unassign|assignments|issue|
voucher|vouchers`: the gift-card business's records. A record kind is principal, program or party; its
fields are a JSON object (text or @FILE) with the keys of `ops_pipeline.giftcards.model`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.options import ACTOR, FORMAT, json_object
from ops_pipeline.cli.output import emit
from ops_pipeline.errors import InvalidInput
from ops_pipeline.giftcards import assignments, files, kinds, records, vouchers
from ops_pipeline.giftcards.model import RESTRICTION_STATES, VOUCHER_STATUSES

KIND = click.argument("kind", type=click.Choice(sorted(kinds.KINDS)))
COLUMNS = {
    "principal": ["principal_id", "kind", "mall_id", "name", "status", "version", "updated_at"],
    "program": ["program_id", "name", "currency", "restriction_state", "status", "version", "updated_at"],
    "party": ["party_id", "kind", "name", "wallet_account_id", "wallet_currency", "status", "version"],
}
ASSIGNMENT_COLUMNS = ["id", "party_id", "program_id", "commission_percent", "starts_on", "ends_on", "status"]
VOUCHER_COLUMNS = ["voucher_id", "program_id", "face_value", "price_paid", "currency", "holder_id", "status",
                   "issued_at", "expires_at"]
MATERIAL_FIELDS = {"principal": ("marketing",), "program": ("artworks", "communications")}


def _show(record: dict) -> None:
    click.echo(json.dumps(record, indent=2))


def _page(rows: list[dict], next_after, columns: list[str], fmt: str) -> None:
    emit(columns, ([r[c] for c in columns] for r in rows), fmt)
    if next_after is not None and fmt == "table":
        click.echo(f"more: --after {next_after}", err=True)


@cli.group("giftcards")
def giftcards_group() -> None:
    """The gift-card business: principals and tenants, programs, distributors and customers, vouchers."""


@giftcards_group.command("create")
@KIND
@click.argument("fields")
@ACTOR
@pass_ctx
def create(ctx: Context, kind: str, fields: str, actor: str) -> None:
    """Create a record from FIELDS (JSON object, or @FILE); secrets are shown masked."""
    _show(records.create(ctx.ws, kinds.KINDS[kind], json_object(fields, kind), actor))


@giftcards_group.command("list")
@KIND
@click.option("--kind", "kind_filter", help="brand, mall, tenant; distributor, customer.")
@click.option("--status", type=click.Choice(records.STATUSES))
@click.option("--after", help="The last id of the previous page.")
@click.option("--limit", type=click.IntRange(1, records.MAX_PAGE), default=50, show_default=True)
@FORMAT
@pass_ctx
def list_records(ctx: Context, kind: str, kind_filter, status, after, limit, fmt) -> None:
    """Records of a kind, by id."""
    found = records.page(ctx.ws, kinds.KINDS[kind], after=after, limit=limit,
                         where={"kind": kind_filter, "status": status})
    _page(*found, COLUMNS[kind], fmt)


@giftcards_group.command("show")
@KIND
@click.argument("key")
@pass_ctx
def show(ctx: Context, kind: str, key: str) -> None:
    """One record (a party with its wallet balance from the ledger)."""
    _show(kinds.show(ctx.ws, kinds.KINDS[kind], key))


@giftcards_group.command("update")
@KIND
@click.argument("key")
@click.argument("changes")
@click.option("--expected-version", type=click.IntRange(1), help="Refuse if the record moved past it.")
@click.option("--reason")
@ACTOR
@pass_ctx
def update_cmd(ctx: Context, kind: str, key: str, changes: str, expected_version, reason, actor) -> None:
    """Change fields (CHANGES: JSON object or @FILE; `status`: active or inactive)."""
    _show(kinds.update(ctx.ws, kinds.KINDS[kind], key, json_object(changes, "changes"), actor,
                       expected_version=expected_version, reason=reason))


@giftcards_group.command("attach")
@click.argument("kind", type=click.Choice(sorted(MATERIAL_FIELDS)))
@click.argument("key")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--field", help="marketing (principal); artworks or communications (program).")
@click.option("--title", required=True)
@ACTOR
@pass_ctx
def attach(ctx: Context, kind: str, key: str, path: Path, field: str | None, title: str, actor: str) -> None:
    """Store a file under OPS_HOME and add it to a record's materials."""
    field = field or MATERIAL_FIELDS[kind][0]
    if field not in MATERIAL_FIELDS[kind]:
        raise InvalidInput(f"field: {field!r} is not one of {', '.join(MATERIAL_FIELDS[kind])}")
    record = records.get(ctx.ws, kinds.KINDS[kind], key)
    stored = files.store(ctx.ws, key, path.name, path.read_bytes())
    materials = [*record[field], {"title": title, "file": stored}]
    kinds.update(ctx.ws, kinds.KINDS[kind], key, {field: materials}, actor)
    click.echo(f"{kind} {key}: {field} + {stored}")


@giftcards_group.command("restriction")
@click.argument("program_id")
@click.argument("state", type=click.Choice(RESTRICTION_STATES))
@click.option("--detail")
@ACTOR
@pass_ctx
def restriction(ctx: Context, program_id: str, state: str, detail, actor: str) -> None:
    """Record the bank restriction state of a program's VPA list."""
    done = kinds.set_restriction(ctx.ws, program_id, state, actor, detail)
    click.echo(f"program {program_id}: restriction {done['restriction_state']}")


@giftcards_group.command("assign")
@click.argument("party_id")
@click.argument("program_id")
@click.option("--starts-on", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--ends-on", type=click.DateTime(["%Y-%m-%d"]))
@click.option("--commission-percent", default="0", show_default=True)
@click.option("--discount-percent", default="0", show_default=True)
@click.option("--agreement-reference")
@ACTOR
@pass_ctx
def assign(ctx: Context, party_id, program_id, starts_on, ends_on, commission_percent, discount_percent,
           agreement_reference, actor) -> None:
    """Let a distributor or customer sell a program on agreed terms from a date."""
    made = assignments.assign(ctx.ws, {
        "party_id": party_id, "program_id": program_id, "starts_on": starts_on.date().isoformat(),
        "ends_on": ends_on.date().isoformat() if ends_on else None, "commission_percent": commission_percent,
        "discount_percent": discount_percent, "agreement_reference": agreement_reference}, actor)
    click.echo(f"assignment {made['id']}: {party_id} sells {program_id} from {made['starts_on']}")


@giftcards_group.command("unassign")
@click.argument("assignment_id", type=click.IntRange(1, 2**63 - 1))
@click.option("--ends-on", type=click.DateTime(["%Y-%m-%d"]), help="Last day in force (default today).")
@click.option("--reason")
@ACTOR
@pass_ctx
def unassign(ctx: Context, assignment_id: int, ends_on, reason, actor: str) -> None:
    """End an assignment."""
    done = assignments.unassign(ctx.ws, assignment_id, actor, ends_on.date() if ends_on else None, reason)
    click.echo(f"assignment {assignment_id}: unassigned, ends on {done['ends_on']}")


@giftcards_group.command("assignments")
@click.option("--party")
@click.option("--program")
@click.option("--on", "on_day", type=click.DateTime(["%Y-%m-%d"]), help="Only those in force that day.")
@click.option("--after", type=click.IntRange(1, 2**63 - 1))
@click.option("--limit", type=click.IntRange(1, records.MAX_PAGE), default=50, show_default=True)
@FORMAT
@pass_ctx
def list_assignments(ctx: Context, party, program, on_day, after, limit, fmt) -> None:
    """Program assignments, by id."""
    on: date | None = on_day.date() if on_day else None
    found = assignments.list_assignments(ctx.ws, party_id=party, program_id=program, on=on, after=after,
                                         limit=limit)
    _page(*found, ASSIGNMENT_COLUMNS, fmt)


@giftcards_group.command("issue")
@click.argument("program_id")
@click.option("--face-value", required=True, help="Major units, e.g. 500.00.")
@click.option("--price-paid", required=True, help="Major units, per voucher.")
@click.option("--count", type=click.IntRange(1, vouchers.MAX_ISSUE), default=1, show_default=True)
@click.option("--holder", help="The distributor or customer holding them.")
@ACTOR
@FORMAT
@pass_ctx
def issue(ctx: Context, program_id, face_value, price_paid, count, holder, actor, fmt) -> None:
    """Issue vouchers of a program."""
    made = vouchers.issue(ctx.ws, program_id, face_value, count, price_paid, actor, holder)
    emit(VOUCHER_COLUMNS, ([v[c] for c in VOUCHER_COLUMNS] for v in made), fmt)


@giftcards_group.command("voucher")
@click.argument("voucher_id")
@click.argument("status", type=click.Choice(VOUCHER_STATUSES), required=False)
@click.option("--holder", help="The distributor or customer (when distributing).")
@click.option("--reason")
@ACTOR
@pass_ctx
def voucher(ctx: Context, voucher_id: str, status: str | None, holder, reason, actor: str) -> None:
    """Show a voucher, or move it to STATUS (distributed, redeemed, expired, cancelled)."""
    if status is None:
        _show(vouchers.get(ctx.ws, voucher_id))
        return
    _show(vouchers.transition(ctx.ws, voucher_id, status, actor, holder_id=holder, reason=reason))


@giftcards_group.command("vouchers")
@click.option("--program")
@click.option("--holder")
@click.option("--status", type=click.Choice(VOUCHER_STATUSES))
@click.option("--after")
@click.option("--limit", type=click.IntRange(1, records.MAX_PAGE), default=50, show_default=True)
@FORMAT
@pass_ctx
def list_vouchers(ctx: Context, program, holder, status, after, limit, fmt) -> None:
    """Vouchers, by id."""
    found = vouchers.list_vouchers(ctx.ws, program_id=program, holder_id=holder, status=status, after=after,
                                   limit=limit)
    _page(*found, VOUCHER_COLUMNS, fmt)
