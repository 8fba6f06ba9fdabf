"""`ops-pipeline merchants ...` and `ops-pipeline ledger ...`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.options import FORMAT, parse_time
from ops_pipeline.cli.output import emit, progress
from ops_pipeline.ledger import (
    KINDS,
    adjustments,
    balances,
    compaction,
    holds,
    ingest,
    landing,
    merchants,
    queries,
    reserves,
    snapshots,
)
from ops_pipeline.money import to_major, to_minor

BALANCE_COLUMNS = [
    "merchant_id",
    "currency",
    "confirmed_balance",
    "settled_balance",
    "held",
    "available",
    "reserved",
    "as_of",
]


@cli.group("merchants")
def merchants_group() -> None:
    """Merchant context: which global merchant and fee rule a local operation belongs to."""


@merchants_group.command("load")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--replace-all", is_flag=True, help="Replace the whole context instead of upserting by key.")
@pass_ctx
def merchants_load(ctx: Context, file: Path, replace_all: bool) -> None:
    """Load or replace merchant context rows from CSV, JSONL or Parquet."""
    r = merchants.load(ctx.ws, file, replace_all=replace_all)
    click.echo(f"merchant context: {r.loaded} rows loaded ({r.replaced} replaced), {r.total} in force")


@cli.group("ledger")
def ledger_group() -> None:
    """The balances ledger: ingest, balances, holds, replay."""


@ledger_group.command("ingest")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--kind", type=click.Choice(list(KINDS)),
              help="confirmed (CO) or reconciled (RO); needed with FILES.")
@pass_ctx
def ledger_ingest(ctx: Context, files: tuple[Path, ...], kind: str | None) -> None:
    """Split operations and append them to the log; idempotent. Without FILES: every file waiting in the
    landing folders, archived once ingested (as the Dagster landing sensor does)."""
    if files and kind is None:
        raise click.UsageError("--kind is required with FILES")
    if files:
        chosen = [(p, kind) for p in files]
    else:
        chosen = [(f.path, f.kind) for f in landing.landing_files(ctx.ws.settings)]
    with progress(chosen, "ingesting") as bar:
        outcomes = landing.ingest_files(ctx.ws, bar)
    for o in outcomes:
        if o.skipped:
            click.echo(f"{o.path.name}: {o.skipped}")
            continue
        r = o.result
        click.echo(
            f"{r.file_name}: {r.rows} rows, {r.ingested} ingested ({r.entries} entries), "
            f"{r.duplicates} duplicate, {r.quarantined} quarantined ({r.newly_quarantined} new)"
            + (f", {r.resolved} resolved" if r.resolved else "")
            + (f"; archived as {o.archived_as}" if o.archived_as else "")
        )


@ledger_group.command("balance")
@click.argument("merchant_id")
@click.option("--currency", help="Only this currency.")
@click.option("--as-of", "as_of", help="Balance from the log for operations dated up to this time.")
@FORMAT
@pass_ctx
def ledger_balance(ctx: Context, merchant_id: str, currency: str | None, as_of: str | None, fmt: str) -> None:
    """Confirmed, settled, held, available and reserved balances of one merchant."""
    if as_of:
        found = balances.balances_as_of(ctx.ws, merchant_id, parse_time(as_of, ctx.ws.settings.tz), currency)
    else:
        found = balances.get_balances(ctx.ws, merchant_id, currency)
    emit(BALANCE_COLUMNS, ([b.to_dict()[c] for c in BALANCE_COLUMNS] for b in found), fmt)


@ledger_group.command("compact")
@click.option("--retention-hours", type=click.IntRange(0), default=None,
              help="Vacuum files replaced longer ago than this (default OPS_LOG_RETENTION_HOURS).")
@pass_ctx
def ledger_compact(ctx: Context, retention_hours: int | None) -> None:
    """Rewrite the small files of the log and the raw feeds into large ones, then vacuum (what Dagster's
    compact_log_job does)."""
    for r in compaction.compact(ctx.ws, actor="cli", retention_hours=retention_hours):
        click.echo(f"{r.table}: {r.files_before} files -> {r.files_after}, {r.vacuumed} vacuumed, "
                   f"version {r.version_after}")


@ledger_group.command("rebuild")
@pass_ctx
def ledger_rebuild(ctx: Context) -> int:
    """Replay the whole log into fresh balances and compare with the cache (exit 1 on any difference)."""
    r = balances.rebuild(ctx.ws)
    click.echo(
        f"replayed {r.entries} entries into {r.balances} balances at log version {r.version} "
        f"in {r.seconds:.2f}s"
    )
    if not r.differences:
        click.echo("cache matches the log")
        return 0
    click.echo(f"{len(r.differences)} differences (minor units, replay vs cache):")
    figures = ("confirmed", "settled", "reserved")
    emit(
        ["merchant_id", "currency", *(f"{f}{end}" for f in figures for end in ("", "_cache"))],
        (
            [d["merchant_id"], d["currency"],
             *(d[f"{f}_minor{end}"] for f in figures for end in ("", "_cache"))]
            for d in r.differences
        ),
    )
    return 1


@ledger_group.command("reprocess")
@pass_ctx
def ledger_reprocess(ctx: Context) -> None:
    """Retry quarantined rows whose cause may be gone (e.g. merchant context now present)."""
    results = ingest.reprocess(ctx.ws, actor="cli")
    done = sum(r.ingested + r.duplicates for r in results)
    still = sum(r.quarantined for r in results)
    click.echo(
        f"reprocessed {sum(r.rows for r in results)} quarantined rows from {len(results)} files: "
        f"{done} now in the ledger, {still} still quarantined"
    )


@ledger_group.command("hold")
@click.argument("merchant_id")
@click.option("--currency", required=True)
@click.option("--amount", required=True, help="Major units, e.g. 12.50")
@click.option("--id", "hold_id", help="Hold id (idempotency key); generated if absent.")
@click.option("--expires-in", type=int, help="Seconds until the hold is released automatically.")
@click.option("--reason")
@pass_ctx
def ledger_hold(ctx: Context, merchant_id, currency, amount, hold_id, expires_in, reason) -> None:
    """Reserve part of the available balance."""
    expires = datetime.now(UTC) + timedelta(seconds=expires_in) if expires_in else None
    h = holds.place_hold(
        ctx.ws,
        merchant_id,
        currency,
        to_minor(amount, currency, allow_zero=False),
        actor="cli",
        hold_id=hold_id,
        expires_at=expires,
        reason=reason,
    )
    click.echo(
        f"hold {h.hold_id}: {to_major(h.amount_minor, currency)} {currency} held for {merchant_id}"
        + (f" until {h.expires_at.isoformat()}" if h.expires_at else "")
    )


@ledger_group.command("release")
@click.argument("hold_id")
@click.option("--reason")
@pass_ctx
def ledger_release(ctx: Context, hold_id: str, reason: str | None) -> None:
    """Release a hold."""
    h = holds.end_hold(ctx.ws, hold_id, actor="cli", reason=reason)
    click.echo(f"hold {h.hold_id}: released {to_major(h.amount_minor, h.currency)} {h.currency}")


@ledger_group.command("adjust")
@click.argument("merchant_id")
@click.option("--currency", required=True)
@click.option("--amount", required=True, help="Signed major units: 10.00 credits, -10.00 debits.")
@click.option("--reference", required=True, help="Why: ticket, case or document reference.")
@click.option("--id", "entry_id", help="Idempotency key; generated if absent.")
@pass_ctx
def ledger_adjust(ctx: Context, merchant_id, currency, amount, reference, entry_id) -> None:
    """Append an ADJUSTMENT entry (the ledger is never edited; corrections are new entries)."""
    a = adjustments.adjust(ctx.ws, merchant_id, currency, adjustments.signed_minor(amount, currency),
                           reference, actor="cli", entry_id=entry_id)
    state = "posted" if a.posted else "already posted"
    click.echo(f"adjustment {a.entry.entry_id}: {amount} {currency} for {merchant_id} {state}")


@ledger_group.command("snapshot")
@pass_ctx
def ledger_snapshot(ctx: Context) -> None:
    """Fold new entries into the cache and append a balance snapshot to the lake."""
    s = snapshots.write_snapshot(ctx.ws)
    click.echo(
        f"snapshot {s.snapshot_id}: {s.balances} balances at log version {s.lake_version} "
        f"({s.new_entries} new entries folded)"
    )


@ledger_group.command("expire-holds")
@pass_ctx
def ledger_expire_holds(ctx: Context) -> None:
    """Mark holds past their expiry as expired."""
    click.echo(f"{holds.expire_holds(ctx.ws)} holds expired")


@ledger_group.command("release-reserves")
@pass_ctx
def ledger_release_reserves(ctx: Context) -> None:
    """Give back reserves whose reserve_days have passed (reserve_expiry entries)."""
    r = reserves.release_due(ctx.ws, actor="cli")
    amounts = ", ".join(f"{to_major(v, c)} {c}" for c, v in r.amounts.items()) or "nothing"
    click.echo(f"{r.released} reserves given back ({amounts}) at log version {r.lake_version}")


@ledger_group.command("turnover")
@click.option("--month", help="YYYY-MM; all months if absent.")
@click.option("--merchant", "merchant_id")
@FORMAT
@pass_ctx
def ledger_turnover(ctx: Context, month: str | None, merchant_id: str | None, fmt: str) -> None:
    """End-of-month turnover per merchant, currency and source."""
    found = queries.turnover(ctx.ws, month, merchant_id)
    emit(found.columns, found.rows, fmt)
    sys.stdout.flush()
