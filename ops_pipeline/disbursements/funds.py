"""The envelope steps: check funds at the sponsor bank, then block the envelope's total there.

The block is mirrored in the ledger as a hold on the program's account `g2p:<mnemonic>` (hold id
`g2p-block-<envelope id>`, reference the bank's block reference), placed in the same transaction as the
step's state: the ledger account must hold the funds too (it mirrors the sponsor account; fund it with an
ADJUSTMENT entry), else the step fails with the ledger's message. The bank call carries the envelope's
id as its Idempotency-Key, so a retried block answers the first block and blocks nothing more.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, update

from ops_pipeline import audit
from ops_pipeline.db.schema import g2p_envelopes
from ops_pipeline.disbursements import claims, envelopes
from ops_pipeline.disbursements.claims import Claim
from ops_pipeline.disbursements.programs import Program
from ops_pipeline.disbursements.programs import find as find_program
from ops_pipeline.ledger.holds import place_hold

if TYPE_CHECKING:
    from ops_pipeline.disbursements.pipeline import Context

FUNDS_AVAILABLE, FUNDS_NOT_AVAILABLE = "FUNDS_AVAILABLE", "FUNDS_NOT_AVAILABLE"
FUNDS_BLOCK_SUCCESS, FUNDS_BLOCK_FAILURE = envelopes.FUNDS_BLOCK_SUCCESS, "FUNDS_BLOCK_FAILURE"


def program_account(mnemonic: str) -> str:
    """The program's account in the ledger (a `merchant_id` of the balance log)."""
    return f"g2p:{mnemonic}"


def hold_id(envelope_id: str) -> str:
    return f"g2p-block-{envelope_id}"


def _program(ctx: Context, envelope_id: str) -> tuple[envelopes.Envelope, Program]:
    with ctx.ws.engine.connect() as conn:
        env = envelopes.get(conn, envelope_id)
        return env, find_program(conn, env.program)


def _set_outcome(conn: Connection, env: envelopes.Envelope, actor: str, reason: str | None, **values) -> None:
    """Under the envelope's row lock: the step's outcome columns, audited."""
    locked = envelopes.lock(conn, env.id)
    before = {k: getattr(locked, k) for k in values}
    conn.execute(update(g2p_envelopes).where(g2p_envelopes.c.id == env.id)
                 .values(**values, updated_at=datetime.now(UTC)))
    audit.record(conn, actor=actor, entity_type="g2p_envelope", entity_id=env.id, action="funds",
                 before=before, after=values, reason=reason)


def check_funds(ctx: Context, held: Claim) -> str | None:
    env, prog = _program(ctx, held.owner_id)
    ok = ctx.connectors.bank.check_funds(prog.sponsor_account, env.currency, env.received_amount_minor)
    error = None if ok else f"{FUNDS_NOT_AVAILABLE}: sponsor account {prog.sponsor_account} lacks the total"
    with ctx.ws.engine.begin() as conn:
        claims.finish(conn, held, error=error, actor=ctx.actor)
        _set_outcome(conn, env, ctx.actor, error,
                     funds_available=FUNDS_AVAILABLE if ok else FUNDS_NOT_AVAILABLE)
    return error


def block_funds(ctx: Context, held: Claim) -> str | None:
    env, prog = _program(ctx, held.owner_id)
    with ctx.ws.engine.begin() as conn:  # a cancel committed since the claim stops the step here
        envelopes.lock(conn, env.id)  # (G2PError: the step ends in ERROR, the bank never asked)
    try:
        reference = ctx.connectors.bank.block_funds(prog.sponsor_account, env.currency,
                                                    env.received_amount_minor, key=hold_id(env.id))
    except Exception as exc:
        error = f"{FUNDS_BLOCK_FAILURE}: {exc}"[:2000]
        with ctx.ws.engine.begin() as conn:
            claims.finish(conn, held, error=error, actor=ctx.actor)
            _set_outcome(conn, env, ctx.actor, error, funds_blocked=FUNDS_BLOCK_FAILURE)
        return error

    def record(conn: Connection) -> None:
        claims.finish(conn, held, error=None, actor=ctx.actor)
        _set_outcome(conn, env, ctx.actor, f"bank block {reference}",
                     funds_blocked=FUNDS_BLOCK_SUCCESS, funds_block_reference=reference)

    place_hold(ctx.ws, program_account(prog.mnemonic), env.currency, env.received_amount_minor,
               actor=ctx.actor, hold_id=hold_id(env.id), reason="g2p funds block", reference=reference,
               on_placed=record)
    return None
