"""The disburse and notify steps of a batch.

disburse: the batch's RESOLVED disbursements go to the sponsor bank's bulk payment in chunks, each item
with the disbursement id as its reference (the bank pays a reference once). Per chunk: the bank call, then
the paid amounts posted to the ledger as PAYOUT entries of the program account (one Delta commit; entry
id = disbursement id, so a retry posts nothing twice), then one transaction moving the items to SHIPPED
(or FAILED with the bank's reason), bumping the envelope's `shipped_count` under its row lock and renewing
the step's lease. A run killed between any two of these re-sends the chunk: the bank answers its first
outcomes, the ledger skips the entries it has, and only items still RESOLVED move on. When the envelope's
last batch is disbursed, the ledger hold of its funds block is captured.

notify: one outbox notification per disbursement of the batch (shipped, failed or unresolved), written in
the transaction that finishes the step.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select, update

from ops_pipeline import audit
from ops_pipeline.crypto import cipher
from ops_pipeline.db.schema import (
    g2p_batch_steps,
    g2p_batches,
    g2p_disbursements,
    g2p_envelopes,
    g2p_financial_addresses,
)
from ops_pipeline.disbursements import addresses, claims, envelopes, funds
from ops_pipeline.disbursements.claims import Claim
from ops_pipeline.disbursements.connectors import Payment
from ops_pipeline.disbursements.resolution import RESOLVED, UNRESOLVED
from ops_pipeline.disbursements.steps import PROCESSED
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.ledger.holds import CAPTURED, end_many
from ops_pipeline.money import to_major
from ops_pipeline.notify.outbox import Notification

if TYPE_CHECKING:
    from ops_pipeline.disbursements.pipeline import Context

SHIPPED, FAILED = "SHIPPED", "FAILED"
CHUNK = 5000  # payments per bank request, ledger commit and transaction


def _to_pay(ctx: Context, batch_id: str) -> list[Payment]:
    d, f = g2p_disbursements.c, g2p_financial_addresses.c
    seal = cipher(ctx.ws.settings)
    with ctx.ws.engine.connect() as conn:
        currency = conn.execute(select(g2p_envelopes.c.currency).join(
            g2p_batches, g2p_batches.c.envelope_id == g2p_envelopes.c.id).where(g2p_batches.c.id == batch_id)
        ).scalar_one()
        rows = conn.execute(
            select(d.id, d.amount_minor, d.beneficiary_id, d.narrative, g2p_financial_addresses)
            .join(g2p_financial_addresses, f.disbursement_id == d.id)
            .where(d.batch_id == batch_id, d.status == RESOLVED, ~d.cancelled).order_by(d.id)
        ).all()
    payments = []
    for r in rows:
        fa = addresses.opened(r, seal)
        payments.append(Payment(r.id, r.amount_minor, currency, r.beneficiary_id, fa.fa_type, fa.address,
                                fa.bank_code, r.narrative))
    return payments


def disburse_batch(ctx: Context, held: Claim) -> None:
    with ctx.ws.engine.connect() as conn:
        env = envelopes.get(conn, conn.execute(select(g2p_batches.c.envelope_id).where(
            g2p_batches.c.id == held.owner_id)).scalar_one())
    account = funds.program_account(env.program)
    payments = _to_pay(ctx, held.owner_id)
    for start in range(0, len(payments), CHUNK):
        chunk = payments[start:start + CHUNK]
        key = "g2p-pay-" + hashlib.sha256("|".join(p.reference for p in chunk).encode()).hexdigest()[:32]
        outcomes = ctx.connectors.bank.pay(env.funds_block_reference, chunk, key=key)
        amounts = {p.reference: p.amount_minor for p in chunk}
        paid = [o.reference for o in outcomes if o.paid]
        post_entries(ctx.ws, [
            Entry("PAYOUT", ref, account, env.currency, -amounts[ref], "g2p_disbursement", reference=env.id)
            for ref in paid], ingest_id=f"g2p-disburse-{held.owner_id}")
        with ctx.ws.engine.begin() as conn:
            held = claims.renew(conn, held, ctx.lease_seconds)
            refused = {o.reference: o.error or "bank refused" for o in outcomes if not o.paid}
            _ship(conn, env.id, paid, refused, ctx.actor)
    with ctx.ws.engine.begin() as conn:
        claims.finish(conn, held, error=None, actor=ctx.actor)
        if _last_disbursed(conn, env.id):
            end_many(conn, [funds.hold_id(env.id)], status=CAPTURED, actor=ctx.actor,
                     reason="every batch of the envelope disbursed", now=datetime.now(UTC))
    return None


def _ship(conn: Connection, envelope_id: str, paid: list[str], failed: dict[str, str], actor: str) -> None:
    """The chunk's outcomes, for items still RESOLVED; the envelope's shipped counter under its row lock
    (what the bank paid is recorded even if the envelope was cancelled meanwhile)."""
    d, now = g2p_disbursements.c, datetime.now(UTC)
    env = envelopes.get(conn, envelope_id, for_update=True)
    shipped = conn.execute(update(g2p_disbursements).where(d.id.in_(paid), d.status == RESOLVED)
                           .values(status=SHIPPED, shipped_at=now, latest_error=None, updated_at=now)
                           .returning(d.id)).scalars().all() if paid else []
    refused = []
    for ref, error in failed.items():
        if conn.execute(update(g2p_disbursements).where(d.id == ref, d.status == RESOLVED)
                        .values(status=FAILED, latest_error=error, updated_at=now)).rowcount:
            refused.append((ref, error))
    if shipped:
        conn.execute(update(g2p_envelopes).where(g2p_envelopes.c.id == envelope_id)
                     .values(shipped_count=g2p_envelopes.c.shipped_count + len(shipped), updated_at=now))
        audit.record(conn, actor=actor, entity_type="g2p_envelope", entity_id=envelope_id, action="shipped",
                     before={"shipped_count": env.shipped_count},
                     after={"shipped_count": env.shipped_count + len(shipped)})
    audit.record_many(
        conn,
        [dict(entity_id=i, action="ship", before={"status": RESOLVED}, after={"status": SHIPPED})
         for i in shipped]
        + [dict(entity_id=i, action="ship", before={"status": RESOLVED}, after={"status": FAILED}, reason=e)
           for i, e in refused],
        actor=actor, entity_type="g2p_disbursement", at=now)


def _last_disbursed(conn: Connection, envelope_id: str) -> bool:
    """Whether every batch of the envelope has its disburse step PROCESSED (this one's included)."""
    s, b = g2p_batch_steps.c, g2p_batches.c
    open_batches = conn.execute(
        select(func.count()).select_from(g2p_batch_steps).join(g2p_batches, b.id == s.batch_id)
        .where(b.envelope_id == envelope_id, s.step == "disburse", s.status != PROCESSED)
    ).scalar_one()
    return open_batches == 0


def notify_batch(ctx: Context, held: Claim) -> None:
    d, e = g2p_disbursements.c, g2p_envelopes.c
    with ctx.ws.engine.begin() as conn:
        rows = conn.execute(
            select(d.id, d.beneficiary_id, d.amount_minor, d.status, d.latest_error, e.currency, e.program)
            .join(g2p_envelopes, e.id == d.envelope_id)
            .where(d.batch_id == held.owner_id, d.status.in_((SHIPPED, FAILED, UNRESOLVED)), ~d.cancelled)
            .order_by(d.id)
        ).all()
        ctx.connectors.notifier.notify(conn, [
            Notification(
                event=f"g2p.disbursement.{r.status.lower()}",
                subject=f"Disbursement {r.id}: {r.status.lower()}",
                payload={"disbursement_id": r.id, "beneficiary_id": r.beneficiary_id, "program": r.program,
                         "amount": str(to_major(r.amount_minor, r.currency)), "currency": r.currency,
                         "status": r.status, "reason": r.latest_error},
                entity_type="g2p_disbursement", entity_id=r.id)
            for r in rows])
        claims.finish(conn, held, error=None, actor=ctx.actor)
    return None
