"""Breaks: the rows of the latest runs that need a person (`recon_breaks` view), and their resolution.

A break is named by its `result_id` in the latest run of its date; resolving it records a decision
(`store.decide`) that the next run of that date applies.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from ops_pipeline import analytics
from ops_pipeline.errors import InvalidInput, NotFound
from ops_pipeline.recon import store

if TYPE_CHECKING:
    from ops_pipeline.workspace import Workspace

COLUMNS = ("break_id", "recon", "business_date", "status", "internal_ids", "external_ids",
           "internal_amount_minor", "external_amount_minor", "amount_difference_minor", "currency", "reason")
BREAK_STATUSES = ("unmatched_internal", "unmatched_external", "matched_with_difference")
ACTIONS = {"match": "match", "unmatch": "unmatch", "write-off": "write_off"}


def open_breaks(ws: Workspace, *, status: str | None = None, older_than_days: int | None = None,
                today: date | None = None, break_ids: tuple[str, ...] = ()) -> list[dict]:
    """Breaks of the latest runs, oldest date first; `older_than_days` keeps dates more than that many
    days before `today` (OPS_TIMEZONE)."""
    if status is not None and status not in BREAK_STATUSES:
        raise InvalidInput(f"status: {status!r} is not one of {', '.join(BREAK_STATUSES)}")
    where, params = ["TRUE"], []
    if status:
        where.append("status = ?")
        params.append(status)
    if older_than_days is not None:
        if older_than_days < 0:
            raise InvalidInput(f"older-than: {older_than_days} is negative")
        where.append("business_date < ?")
        params.append((today or datetime.now(ws.settings.tz).date()) - timedelta(days=older_than_days))
    if break_ids:
        where.append(f"break_id IN ({', '.join('?' * len(break_ids))})")
        params.extend(break_ids)
    con = analytics.connect(ws)
    try:
        found = con.execute(f"SELECT {', '.join(COLUMNS)} FROM recon_breaks WHERE {' AND '.join(where)} "
                            "ORDER BY business_date, recon, break_id", params).fetchall()
    finally:
        con.close()
    return [dict(zip(COLUMNS, r, strict=True)) for r in found]


def resolve(ws: Workspace, break_id: str, action: str, note: str, actor: str,
            other_id: str | None = None) -> int:
    """Decide on a break: `write-off` its records, `match` it as it is (or with the unmatched break
    `other_id` of the same recon and date), or `unmatch` a pair matched with a difference. The decision id."""
    if action not in ACTIONS:
        raise InvalidInput(f"action: {action!r} is not one of {', '.join(ACTIONS)}")
    wanted = (break_id, *((other_id,) if other_id else ()))
    found = {b["break_id"]: b for b in open_breaks(ws, break_ids=wanted)}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFound(f"break {missing[0]!r} is not a break of the latest runs (see `recon breaks`)")
    chosen = [found[i] for i in wanted]
    if len({(b["recon"], b["business_date"]) for b in chosen}) > 1:
        raise InvalidInput(f"breaks {break_id} and {other_id} are of different reconciliations or dates")
    internal = [i for b in chosen for i in b["internal_ids"]]
    external = [i for b in chosen for i in b["external_ids"]]
    first = chosen[0]
    return store.decide(ws, first["recon"], first["business_date"], ACTIONS[action], internal, external,
                        note, actor)
