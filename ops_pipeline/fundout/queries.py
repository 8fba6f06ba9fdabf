"""Read models of the console's fund-out pages: a batch's payouts and a business's payouts, a keyset page at
a time.

    page = batch_payouts(ws, batch_id=7, failed_only=True)      # .payouts, .next_after (a payout id)
    business = business(ws, "B1", after=None)                   # .config (or None), .payouts
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select

from ops_pipeline.db.schema import fundout_payouts
from ops_pipeline.errors import InvalidInput, NotFound
from ops_pipeline.fundout import config
from ops_pipeline.fundout.bank import FAILED
from ops_pipeline.fundout.batch import get_batch
from ops_pipeline.fundout.payouts import Payout, from_row
from ops_pipeline.workspace import Workspace

PAGE = 50
MAX_CURSOR = 40  # payout ids are UUIDs


@dataclass(frozen=True)
class PayoutPage:
    payouts: list[Payout]
    next_after: str | None  # the payout id to pass as `after` for the next page; None on the last


def _page(rows: list, limit: int) -> PayoutPage:
    found = [from_row(r) for r in rows[:limit]]
    return PayoutPage(found, found[-1].id if len(rows) > limit else None)


def _cursor(after: str | None) -> str | None:
    if after is not None and (not after or len(after) > MAX_CURSOR):
        raise InvalidInput(f"after: {config.shown(after)} is not a cursor from a previous page")
    return after


def batch_payouts(
    ws: Workspace, batch_id: int, failed_only: bool = False, after: str | None = None, limit: int = PAGE
) -> PayoutPage:
    """The batch's payouts by id (failed ones only with `failed_only`), after the payout id `after`
    (ix_fundout_payouts_batch); NotFound for an unknown batch."""
    get_batch(ws, batch_id)
    p = fundout_payouts.c
    where = [p.batch_id == batch_id]
    if failed_only:
        where.append(p.status == FAILED)
    if _cursor(after) is not None:
        where.append(p.id > after)
    with ws.read_engine.connect() as conn:
        rows = conn.execute(select(fundout_payouts).where(*where).order_by(p.id).limit(limit + 1)).all()
    return _page(rows, limit)


@dataclass(frozen=True)
class Business:
    business_id: str
    config: config.FundoutConfig | None  # None: the business has only manual cash-outs
    payouts: PayoutPage


def business(ws: Workspace, business_id: str, after: str | None = None, limit: int = PAGE) -> Business:
    """A business's configuration and its payouts newest first (keyset on created_at, id; the business's
    rows found by uq_fundout_payouts_slot); NotFound when it has neither."""
    try:
        found = config.get_config(ws, business_id)
    except NotFound:
        found = None
    p = fundout_payouts.c
    query = select(fundout_payouts).where(p.business_id == business_id)
    with ws.read_engine.connect() as conn:
        if _cursor(after) is not None:
            mark = select(p.created_at).where(p.id == after, p.business_id == business_id)
            last = conn.execute(mark).first()
            if last is None:
                raise InvalidInput(f"after: {config.shown(after)} is not a cursor from a previous page")
            query = query.where(or_(p.created_at < last.created_at,
                                    (p.created_at == last.created_at) & (p.id < after)))
        rows = conn.execute(query.order_by(p.created_at.desc(), p.id.desc()).limit(limit + 1)).all()
    if found is None and not rows and after is None:
        raise NotFound(f"businessId: {config.shown(business_id)} has no fund-out configuration and no payout")
    return Business(business_id, found, _page(rows, limit))
