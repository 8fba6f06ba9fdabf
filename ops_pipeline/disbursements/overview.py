"""What ops look at (the console's disbursement pages): envelopes with their counters and step states, and
one envelope's batches with their step states and disbursement counts per status. Reads only."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from ops_pipeline.db.schema import g2p_batch_steps, g2p_batches, g2p_disbursements, g2p_envelope_steps
from ops_pipeline.disbursements import codes, envelopes, steps
from ops_pipeline.disbursements.batches import BatchControl
from ops_pipeline.disbursements.codes import G2PError
from ops_pipeline.disbursements.envelopes import EnvelopeStatus
from ops_pipeline.errors import NotFound
from ops_pipeline.workspace import Workspace

MAX_ENVELOPES = 200


@dataclass(frozen=True)
class BatchView:
    batch: BatchControl
    statuses: dict[str, int]  # disbursements per status


@dataclass(frozen=True)
class EnvelopeView:
    status: EnvelopeStatus
    batches: list[BatchView]
    statuses: dict[str, int]  # the envelope's disbursements per status


def _ordered(rows, order: tuple[str, ...]) -> list[steps.StepState]:
    rank = {s: i for i, s in enumerate(order)}
    return sorted((steps.state(r) for r in rows), key=lambda s: (rank.get(s.step, len(rank)), s.step))


def list_envelopes(ws: Workspace, program: str | None = None, limit: int = 50) -> list[EnvelopeStatus]:
    """The newest envelopes (of `program`), each with its envelope steps' states (two queries)."""
    found = envelopes.list_envelopes(ws, program or None, min(max(limit, 1), MAX_ENVELOPES))
    s = g2p_envelope_steps.c
    by_envelope: dict[str, list] = defaultdict(list)
    if found:
        with ws.read_engine.connect() as conn:
            query = select(g2p_envelope_steps).where(s.envelope_id.in_([e.id for e in found]))
            for row in conn.execute(query):
                by_envelope[row.envelope_id].append(row)
    return [EnvelopeStatus(e, _ordered(by_envelope[e.id], steps.ENVELOPE_STEPS)) for e in found]


def envelope_view(ws: Workspace, envelope_id: Any) -> EnvelopeView:
    """An envelope, its batches (oldest first) with their steps and counts per status; NotFound for an
    unknown envelope, G2PError INVALID_DISBURSEMENT_ENVELOPE_ID (400) for an id that is no UUID."""
    try:
        status = envelopes.envelope_status(ws, envelope_id)
    except G2PError as exc:
        if exc.code == codes.DISBURSEMENT_ENVELOPE_NOT_FOUND:
            raise NotFound(str(exc)) from None
        raise
    b, s, d = g2p_batches.c, g2p_batch_steps.c, g2p_disbursements.c
    with ws.read_engine.connect() as conn:
        found = conn.execute(select(b.id, b.envelope_id, b.count, b.amount_minor, b.created_at)
                             .where(b.envelope_id == status.envelope.id).order_by(b.created_at, b.id)).all()
        step_rows: dict[str, list] = defaultdict(list)
        for row in conn.execute(select(g2p_batch_steps).join(g2p_batches, b.id == s.batch_id)
                                .where(b.envelope_id == status.envelope.id)):
            step_rows[row.batch_id].append(row)
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for batch_id, st, n in conn.execute(select(d.batch_id, d.status, func.count())
                                            .where(d.envelope_id == status.envelope.id)
                                            .group_by(d.batch_id, d.status)):
            counts[batch_id][st] = n
    views = [BatchView(BatchControl(*r, _ordered(step_rows[r.id], steps.BATCH_STEPS)),
                       dict(sorted(counts[r.id].items()))) for r in found]
    total: dict[str, int] = defaultdict(int)
    for v in views:
        for st, n in v.statuses.items():
            total[st] += n
    return EnvelopeView(status, views, dict(sorted(total.items())))

