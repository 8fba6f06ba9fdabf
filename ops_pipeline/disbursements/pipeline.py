"""Running the pipeline's steps: `run_step` claims what is ready for a step and does it, row by row.

Readiness per step: fa_resolution, any batch of a live envelope; funds_check, an envelope complete
(received = declared) whose schedule date has come; funds_block, after funds were found available;
disburse, a batch resolved of an envelope whose funds are blocked; notify, a batch disbursed. A row that
fails is ERROR with its latest error and is tried again (by a later run) until `OPS_G2P_MAX_ATTEMPTS`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, and_, or_, select

from ops_pipeline.db.schema import g2p_batch_steps, g2p_batches, g2p_envelopes
from ops_pipeline.disbursements import claims, envelopes, funds, payments, resolution
from ops_pipeline.disbursements.claims import Claim, LeaseLost
from ops_pipeline.disbursements.connectors import Connectors
from ops_pipeline.disbursements.steps import ERROR, PENDING, PROCESSED, PROCESSING
from ops_pipeline.workspace import Workspace

log = logging.getLogger(__name__)
STEPS = ("fa_resolution", "funds_check", "funds_block", "disburse", "notify")  # in pipeline order
LEASE_SECONDS = 300.0


@dataclass(frozen=True)
class StepRun:
    step: str
    claimed: int
    processed: int
    errors: int
    lost: int  # leases lost mid-way (another runner recovered the row)


@dataclass(frozen=True)
class Context:
    ws: Workspace
    connectors: Connectors
    actor: str
    lease_seconds: float


def _envelope_ready(ws: Workspace) -> Select:
    e = g2p_envelopes.c
    return select(e.id).where(~e.cancelled, e.received_count == e.declared_count,
                              e.received_amount_minor == e.declared_amount_minor,
                              e.schedule_date <= envelopes.today(ws))


def _batches_where(*conditions) -> Select:
    b, e = g2p_batches.c, g2p_envelopes.c
    return select(b.id).join(g2p_envelopes, e.id == b.envelope_id).where(~e.cancelled, *conditions)


def _batch_step_done(step: str):
    s = g2p_batch_steps.c
    return select(s.batch_id).where(s.step == step, s.status == PROCESSED).scalar_subquery()


def eligible(ws: Workspace, step: str) -> Select:
    """The ids (envelopes or batches) whose `step` may run now."""
    e, b = g2p_envelopes.c, g2p_batches.c
    if step == "fa_resolution":
        return _batches_where()
    if step == "funds_check":
        return _envelope_ready(ws)
    if step == "funds_block":
        return _envelope_ready(ws).where(e.funds_available == funds.FUNDS_AVAILABLE)
    if step == "disburse":
        return _batches_where(e.funds_blocked == funds.FUNDS_BLOCK_SUCCESS,
                              b.id.in_(_batch_step_done("fa_resolution")))
    if step == "notify":
        return _batches_where(b.id.in_(_batch_step_done("disburse")))
    claims.table_of(step)  # raises, naming the steps
    raise AssertionError(step)


WORK: dict[str, Callable[[Context, Claim], str | None]] = {
    "fa_resolution": resolution.resolve_batch,
    "funds_check": funds.check_funds,
    "funds_block": funds.block_funds,
    "disburse": payments.disburse_batch,
    "notify": payments.notify_batch,
}


def run_step(ws: Workspace, step: str, *, worker: str, limit: int = 10, connectors: Connectors | None = None,
             lease_seconds: float = LEASE_SECONDS) -> StepRun:
    """Claim up to `limit` rows ready for `step` and do each; the connectors from the settings unless given.

    Each row's work ends in one transaction with its PROCESSED/ERROR state; an exception records ERROR."""
    if step not in STEPS:
        raise ValueError(f"step: {step!r} is not one of {', '.join(STEPS)}")
    held = claims.claim(ws, step, eligible(ws, step), worker=worker, limit=limit,
                        max_attempts=ws.settings.g2p_max_attempts, lease_seconds=lease_seconds)
    own = connectors is None and held
    conns = Connectors.from_settings(ws.settings) if own else connectors
    ctx = Context(ws, conns, f"worker:{worker}", lease_seconds)
    done = errors = lost = 0
    try:
        for one in held:
            try:
                error = WORK[step](ctx, one)
            except LeaseLost:
                lost += 1
                continue
            except Exception as exc:
                log.warning("%s of %s failed: %s", step, one.owner_id, exc)
                error = f"{type(exc).__name__}: {exc}"[:2000]
                try:
                    with ws.engine.begin() as conn:
                        claims.finish(conn, one, error=error, actor=ctx.actor)
                except LeaseLost:
                    lost += 1
                    continue
            done, errors = (done, errors + 1) if error else (done + 1, errors)
    finally:
        if own:
            conns.close()
    return StepRun(step, len(held), done, errors, lost)


def waiting(ws: Workspace, step: str, limit: int = 1000) -> list[tuple[str, datetime]]:
    """The rows of `step` a run would claim now, stale ones included, oldest first: (owner id, updated_at)
    (for the sensors: their run keys name this turn of these rows)."""
    table, key = claims.table_of(step)
    c = table.c
    ready = and_(c.status.in_((PENDING, ERROR)), c.attempts < ws.settings.g2p_max_attempts)
    stale = and_(c.status == PROCESSING, c.lease_until < datetime.now(UTC))
    query = (select(c[key], c.updated_at)
             .where(c.step == step, or_(ready, stale), c[key].in_(eligible(ws, step).scalar_subquery()))
             .order_by(c.created_at, c[key]).limit(limit))
    with ws.read_engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]
