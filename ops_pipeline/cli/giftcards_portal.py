"""`ops-pipeline portals mapping-create|mapping-update|mappings|load|landing|quarantine|run|show`: principal
portal exports (their mapping, intake, quarantined lines) and their reconciliation against our vouchers."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.options import ACTOR, FORMAT, json_object, parse_date
from ops_pipeline.cli.output import emit

DATE = click.option("--date", "day", required=True, help="Business date (YYYY-MM-DD, OPS_TIMEZONE).")


@cli.group("portals")
def portals_group() -> None:
    """Principal portal exports: mappings, intake, and their reconciliation against our vouchers."""


@portals_group.command("mapping-create")
@click.argument("fields")
@ACTOR
@pass_ctx
def mapping_create(ctx: Context, fields: str, actor: str) -> None:
    """Create a principal's export mapping from FIELDS (JSON object, or @FILE)."""
    from ops_pipeline.giftcards import records
    from ops_pipeline.giftcards.portal_mapping import MAPPINGS

    click.echo(json.dumps(records.create(ctx.ws, MAPPINGS, json_object(fields, "mapping"), actor), indent=2))


@portals_group.command("mapping-update")
@click.argument("principal_id")
@click.argument("changes")
@click.option("--expected-version", type=int, help="Refuse if the mapping is no longer at this version.")
@ACTOR
@pass_ctx
def mapping_update(ctx: Context, principal_id: str, changes: str, expected_version: int | None,
                   actor: str) -> None:
    """Change fields of a principal's mapping (CHANGES: JSON object, or @FILE)."""
    from ops_pipeline.giftcards import records
    from ops_pipeline.giftcards.portal_mapping import MAPPINGS

    changed = records.update_record(ctx.ws, MAPPINGS, principal_id, json_object(changes, "changes"), actor,
                                    expected_version=expected_version)
    click.echo(json.dumps(changed, indent=2))


@portals_group.command("mappings")
@FORMAT
@pass_ctx
def mappings(ctx: Context, fmt: str) -> None:
    """Every principal's mapping (the first 500)."""
    from ops_pipeline.giftcards import records
    from ops_pipeline.giftcards.portal_mapping import MAPPINGS

    found, _ = records.page(ctx.ws, MAPPINGS, limit=records.MAX_PAGE)
    columns = ["principal_id", "format", "date_format", "decimal_separator", "currency", "status", "version"]
    emit(columns, ([m[c] for c in columns] for m in found), fmt)


@portals_group.command("load")
@click.argument("principal_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--date", "day", help="Export date (default: the date in the file name, else today).")
@ACTOR
@pass_ctx
def load(ctx: Context, principal_id: str, file: Path, day: str | None, actor: str) -> None:
    """Load a principal's portal export (CSV or XLSX, as its mapping says), once."""
    from ops_pipeline.giftcards.portal_exports import load_export

    r = load_export(ctx.ws, principal_id, file.read_bytes(), file.name, actor,
                    parse_date(day) if day else None)
    if r.already_loaded:
        click.echo(f"{file.name}: loaded before (export {r.export_id[:12]}), nothing done")
    else:
        click.echo(f"{file.name}: {r.vouchers} vouchers of {principal_id} dated {r.export_date}, "
                   f"{r.quarantined} lines quarantined (export {r.export_id[:12]})")


@portals_group.command("landing")
@ACTOR
@pass_ctx
def landing(ctx: Context, actor: str) -> None:
    """Load every export waiting in OPS_HOME/landing/portals/<principal_id>/ and archive it."""
    from ops_pipeline.giftcards.portal_landing import load_landing

    for o in load_landing(ctx.ws, actor):
        r = o.result
        click.echo(f"{o.path.name}: refused: {o.error}" if o.error else
                   f"{o.path.name}: {r.vouchers} vouchers, {r.quarantined} quarantined"
                   + (" (loaded before)" if r.already_loaded else ""))


@portals_group.command("quarantine")
@click.option("--principal", "principal_id")
@click.option("--date", "day", help="Export date (YYYY-MM-DD).")
@FORMAT
@pass_ctx
def quarantine(ctx: Context, principal_id: str | None, day: str | None, fmt: str) -> None:
    """Export lines that did not parse, with every reason."""
    from ops_pipeline.giftcards.portal_exports import quarantined

    columns = ["principal_id", "export_date", "file_name", "row_number", "reason"]
    found = quarantined(ctx.ws, principal_id, parse_date(day) if day else None)
    emit(columns, ([q[c] for c in columns] for q in found), fmt)


@portals_group.command("run")
@DATE
@click.option("--principal", "principal_id", help="Require this principal to have an export of the date.")
@ACTOR
@FORMAT
@pass_ctx
def run(ctx: Context, day: str, principal_id: str | None, actor: str, fmt: str) -> None:
    """Reconcile the portal exports of a date against our vouchers; prints the rows per status."""
    from ops_pipeline.recon import portal

    summary = portal.run(ctx.ws, parse_date(day), actor=actor, principal_id=principal_id)
    emit(["status", "rows"], ([s, n] for s, n in summary.counts.items()), fmt)


@portals_group.command("show")
@DATE
@FORMAT
@pass_ctx
def show(ctx: Context, day: str, fmt: str) -> None:
    """The latest portal reconciliation of a date: rows and face values (major units) per status, and its
    open breaks (resolve them with `recon resolve`)."""
    from ops_pipeline.money import to_major
    from ops_pipeline.recon import breaks, portal

    business_date = parse_date(day)
    emit(["status", "currency", "rows", "ours", "portal"],
         ([s, c, n, str(to_major(o, c)), str(to_major(p, c))]
          for s, c, n, o, p in portal.status_totals(ctx.ws, business_date, business_date)), fmt)
    found = breaks.open_breaks(ctx.ws, recon=portal.NAME, business_date=business_date)
    if fmt == "table":
        click.echo(f"\n{len(found)} open breaks")
    emit(["break_id", "status", "reason"], ([b["break_id"], b["status"], b["reason"]] for b in found), fmt)
