"""The fa_resolution step: one mapper `resolve` per batch; each beneficiary's FA parsed and sealed.

A disbursement whose beneficiary the mapper cannot resolve (or whose FA is in no known form) becomes
UNRESOLVED with the reason in `latest_error`: an error on that disbursement, not on the batch. Only
disbursements still RECEIVED are asked for, so a retried batch resolves what is left.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from ops_pipeline import audit
from ops_pipeline.crypto import cipher
from ops_pipeline.db.bulk import insert_rows
from ops_pipeline.db.schema import g2p_disbursements, g2p_financial_addresses
from ops_pipeline.disbursements import addresses, claims
from ops_pipeline.disbursements.batches import RECEIVED
from ops_pipeline.disbursements.claims import Claim

if TYPE_CHECKING:
    from ops_pipeline.disbursements.pipeline import Context

RESOLVED, UNRESOLVED = "RESOLVED", "UNRESOLVED"
IN_CLAUSE = 5000


def resolve_batch(ctx: Context, held: Claim) -> None:
    d = g2p_disbursements.c
    with ctx.ws.engine.connect() as conn:
        todo = conn.execute(select(d.id, d.beneficiary_id).where(
            d.batch_id == held.owner_id, d.status == RECEIVED, ~d.cancelled).order_by(d.id)).all()
    answers = ctx.connectors.mapper.resolve(sorted({r.beneficiary_id for r in todo})) if todo else {}
    seal, now = cipher(ctx.ws.settings), datetime.now(UTC)
    found, failed = [], []
    for r in todo:
        answer = answers.get(r.beneficiary_id)
        try:
            if answer is None or answer.fa is None:
                raise addresses.UnparsableAddress(
                    f"beneficiary_id: mapper could not resolve {r.beneficiary_id!r}"
                    + (f" ({answer.error})" if answer is not None and answer.error else ""))
            fa = addresses.parse(answer.fa)
        except addresses.UnparsableAddress as exc:
            failed.append((r.id, str(exc)))
            continue
        found.append(addresses.row(r.id, r.beneficiary_id, fa, answer.name, seal, now))
    with ctx.ws.engine.begin() as conn:
        claims.finish(conn, held, error=None, actor=ctx.actor)
        insert_rows(conn, g2p_financial_addresses, found)
        ids = [f["disbursement_id"] for f in found]
        for start in range(0, len(ids), IN_CLAUSE):
            conn.execute(update(g2p_disbursements).where(d.id.in_(ids[start:start + IN_CLAUSE]))
                         .values(status=RESOLVED, latest_error=None, updated_at=now))
        for disbursement_id, error in failed:
            conn.execute(update(g2p_disbursements).where(d.id == disbursement_id)
                         .values(status=UNRESOLVED, latest_error=error, updated_at=now))
        audit.record_many(
            conn,
            [dict(entity_id=i, action="resolve", before={"status": RECEIVED}, after={"status": RESOLVED})
             for i in ids]
            + [dict(entity_id=i, action="resolve", before={"status": RECEIVED}, after={"status": UNRESOLVED},
                    reason=e) for i, e in failed],
            actor=ctx.actor, entity_type="g2p_disbursement", at=now)
    return None
