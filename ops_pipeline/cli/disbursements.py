"""`ops-pipeline disbursements programs add|list`, `partner-key add|list`, `envelopes`, `envelope ID`,
`status ID`, `run-step STEP`, `statements`."""

from __future__ import annotations

import json
import os
import socket

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.options import ACTOR, FORMAT
from ops_pipeline.cli.output import emit
from ops_pipeline.disbursements import batches, codes, envelopes, partner_keys, pipeline, programs
from ops_pipeline.disbursements import statements as g2p_statements
from ops_pipeline.disbursements.codes import G2PError
from ops_pipeline.exports import text
from ops_pipeline.money import to_major

PROGRAM_COLUMNS = ["mnemonic", "name", "sponsor_bank_code", "sponsor_account", "currency", "active"]
KEY_COLUMNS = ["id", "partner", "alg", "fingerprint", "active", "created_at"]
ENVELOPE_COLUMNS = [
    "id",
    "program",
    "currency",
    "frequency",
    "cycle_code",
    "schedule_date",
    "cancelled",
    "declared_count",
    "declared_amount",
    "received_count",
    "received_amount",
    "shipped_count",
    "reconciled_count",
    "reversed_count",
    "funds_available",
    "funds_blocked",
]


@cli.group("disbursements")
def disbursements_group() -> None:
    """G2P disbursements: benefit programs, partner keys, envelopes and their status."""


@disbursements_group.group("programs")
def programs_group() -> None:
    """Benefit programs that envelopes name by mnemonic."""


@programs_group.command("add")
@click.option("--mnemonic", required=True)
@click.option("--name", required=True)
@click.option("--sponsor-bank", "sponsor_bank_code", required=True, help="The sponsor bank's code.")
@click.option("--account", "sponsor_account", required=True, help="The sponsor account number.")
@click.option("--currency", required=True, help="ISO 4217 code of the account and the disbursements.")
@ACTOR
@pass_ctx
def programs_add(ctx: Context, mnemonic, name, sponsor_bank_code, sponsor_account, currency, actor) -> None:
    """Configure a benefit program."""
    p = programs.add_program(
        ctx.ws,
        mnemonic=mnemonic,
        name=name,
        sponsor_bank_code=sponsor_bank_code,
        sponsor_account=sponsor_account,
        currency=currency,
        actor=f"cli:{actor}",
    )
    emit(PROGRAM_COLUMNS, [[getattr(p, c) for c in PROGRAM_COLUMNS]], "table")


@programs_group.command("list")
@FORMAT
@pass_ctx
def programs_list(ctx: Context, fmt) -> None:
    """The configured benefit programs."""
    emit(
        PROGRAM_COLUMNS,
        [[getattr(p, c) for c in PROGRAM_COLUMNS] for p in programs.list_programs(ctx.ws)],
        fmt,
    )


@disbursements_group.group("partner-key")
def partner_key_group() -> None:
    """Public keys partners sign Partner API request bodies with."""


@partner_key_group.command("add")
@click.option("--partner", required=True, help="The partner: its bearer token's `sub`.")
@click.option("--alg", type=click.Choice(partner_keys.ALGORITHMS), required=True)
@click.option("--pem", "pem_file", type=click.File("rb"), required=True, help="The public key (PEM).")
@ACTOR
@pass_ctx
def partner_key_add(ctx: Context, partner, alg, pem_file, actor) -> None:
    """Register a partner's public key."""
    k = partner_keys.add_key(ctx.ws, partner, alg, pem_file.read(), f"cli:{actor}")
    emit(KEY_COLUMNS, [[getattr(k, c) for c in KEY_COLUMNS]], "table")


@partner_key_group.command("list")
@click.option("--partner", help="Only this partner's keys.")
@FORMAT
@pass_ctx
def partner_key_list(ctx: Context, partner, fmt) -> None:
    """Registered partner keys."""
    keys = partner_keys.list_keys(ctx.ws, partner)
    emit(KEY_COLUMNS, [[getattr(k, c) for c in KEY_COLUMNS] for k in keys], fmt)


def _envelope_row(e: envelopes.Envelope) -> list:
    values = {
        **e.__dict__,
        "declared_amount": to_major(e.declared_amount_minor, e.currency),
        "received_amount": to_major(e.received_amount_minor, e.currency),
    }
    return [values[c] for c in ENVELOPE_COLUMNS]


@disbursements_group.command("envelopes")
@click.option("--program", help="Only this program's envelopes.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@FORMAT
@pass_ctx
def envelopes_list(ctx: Context, program, limit, fmt) -> None:
    """The newest envelopes."""
    emit(ENVELOPE_COLUMNS, [_envelope_row(e) for e in envelopes.list_envelopes(ctx.ws, program, limit)], fmt)


@disbursements_group.command("envelope")
@click.argument("envelope_id")
@FORMAT
@pass_ctx
def envelope_show(ctx: Context, envelope_id, fmt) -> None:
    """One envelope's counters, then the state of its steps."""
    st = envelopes.envelope_status(ctx.ws, envelope_id)
    columns = ["step", "status", "attempts", "latest_error", "lease_until", "updated_at", "processed_at"]
    steps = [[getattr(s, c) for c in columns] for s in st.steps]
    if fmt == "json":  # one document
        shown = {
            "envelope": dict(zip(ENVELOPE_COLUMNS, _envelope_row(st.envelope), strict=True)),
            "steps": [dict(zip(columns, row, strict=True)) for row in steps],
        }
        click.echo(json.dumps(shown, indent=2, default=text))
        return
    emit(ENVELOPE_COLUMNS, [_envelope_row(st.envelope)], fmt)
    emit(columns, steps, fmt)


STATEMENT_COLUMNS = ["statement_id", "program", "account", "file_name", "format", "entries", "remittances",
                     "reversals", "exceptions", "uploaded_by", "uploaded_at", "reconciled_at"]


@disbursements_group.command("statements")
@click.option("--program", help="Only this program's statements.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@FORMAT
@pass_ctx
def statements_list(ctx: Context, program, limit, fmt) -> None:
    """The newest sponsor account statements with their remittance, reversal and exception counts."""
    rows = g2p_statements.list_statements(ctx.ws, program, limit)
    emit(STATEMENT_COLUMNS, [[getattr(s, c) for c in STATEMENT_COLUMNS] for s in rows], fmt)


DISBURSEMENT_COLUMNS = ["id", "envelope_id", "batch_id", "beneficiary_id", "amount", "status", "latest_error",
                        "shipped_at", "reconciled_at", "reversed_at", "reversal_reason"]


@disbursements_group.command("status")
@click.argument("item_id")
@FORMAT
@click.pass_context
def status_show(click_ctx: click.Context, item_id, fmt) -> None:
    """An envelope's counters and steps, or one disbursement's status (ITEM_ID is either)."""
    ctx: Context = click_ctx.obj
    try:
        envelopes.envelope_status(ctx.ws, item_id)
    except G2PError as exc:
        if exc.code != codes.DISBURSEMENT_ENVELOPE_NOT_FOUND:
            raise
    else:
        click_ctx.invoke(envelope_show, envelope_id=item_id, fmt=fmt)
        return
    (d,) = batches.disbursement_status(ctx.ws, [item_id])
    with ctx.ws.read_engine.connect() as conn:
        currency = envelopes.get(conn, d.envelope_id).currency
    values = {**d.__dict__, "amount": to_major(d.amount_minor, currency)}
    emit(DISBURSEMENT_COLUMNS, [[values[c] for c in DISBURSEMENT_COLUMNS]], fmt)


@disbursements_group.command("run-step")
@click.argument("step", type=click.Choice(pipeline.STEPS))
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="At most this many envelopes or batches.")
@click.option("--worker", default=lambda: f"cli-{socket.gethostname()}-{os.getpid()}",
              help="Who holds the leases (default: host and process id).")
@FORMAT
@pass_ctx
def run_step_cmd(ctx: Context, step, limit, worker, fmt) -> None:
    """Claim what is ready for STEP and do it: claimed, processed, errors, leases lost."""
    ran = pipeline.run_step(ctx.ws, step, worker=worker, limit=limit)
    columns = ["step", "claimed", "processed", "errors", "lost"]
    emit(columns, [[getattr(ran, c) for c in columns]], fmt)
