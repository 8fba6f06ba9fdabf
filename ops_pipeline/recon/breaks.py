"""Breaks: the rows of the latest runs that need a person (`recon_breaks` view), and their resolution.

A break is named by a stable id (sql/views/recon_results.sql): the same records breaking on the same date
keep it across re-runs. Resolving a break records a decision (`store.decide`) that the next run of that date
applies, and resolves the break's ticket. Each break of the latest runs has one ticket (source
`reconciliation`, reference the break id, `sync_tickets`); a break gone from the latest runs (a later run
matched it, or a decision was applied) has its ticket resolved by the next sync.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from ops_pipeline.errors import InvalidInput, NotFound
from ops_pipeline.recon import store
from ops_pipeline.recon.registry import RECONS
from ops_pipeline.tickets import sources

if TYPE_CHECKING:
    from ops_pipeline.workspace import Workspace

COLUMNS = ("break_id", "recon", "business_date", "status", "internal_ids", "external_ids",
           "internal_amount_minor", "external_amount_minor", "amount_difference_minor", "currency", "reason",
           "first_seen_at")
MAX_LIMIT = 1000
BREAK_STATUSES = ("unmatched_internal", "unmatched_external", "matched_with_difference")
ACTIONS = {"match": "match", "unmatch": "unmatch", "write-off": "write_off"}


def open_breaks(ws: Workspace, *, status: str | None = None, older_than_days: int | None = None,
                today: date | None = None, break_ids: tuple[str, ...] = (), recon: str | None = None,
                business_date: date | None = None, after: tuple[date, str, str] | None = None,
                limit: int | None = None) -> list[dict]:
    """Breaks of the latest runs, ordered by (business date, recon, break id); `older_than_days` keeps dates
    more than that many days before `today` (OPS_TIMEZONE); `after` (a previous page's last key) and
    `limit` page through them."""
    if status is not None and status not in BREAK_STATUSES:
        raise InvalidInput(f"status: {status!r} is not one of {', '.join(BREAK_STATUSES)}")
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit: {limit} is not between 1 and {MAX_LIMIT}")
    check_recon(recon)
    where, params = ["TRUE"], []
    for column, value in (("status", status), ("recon", recon), ("business_date", business_date)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if older_than_days is not None:
        if older_than_days < 0:
            raise InvalidInput(f"older-than: {older_than_days} is negative")
        where.append("business_date < ?")
        params.append((today or datetime.now(ws.settings.tz).date()) - timedelta(days=older_than_days))
    if break_ids:
        where.append(f"break_id IN ({', '.join('?' * len(break_ids))})")
        params.extend(break_ids)
    if after:
        where.append("(business_date, recon, break_id) > (?, ?, ?)")
        params.extend(after)
    with store.results_connection(ws) as con:
        found = con.execute(f"SELECT {', '.join(COLUMNS)} FROM recon_breaks WHERE {' AND '.join(where)} "
                            "ORDER BY business_date, recon, break_id"
                            + (f" LIMIT {int(limit)}" if limit else ""), params).fetchall()
    return [dict(zip(COLUMNS, r, strict=True)) for r in found]


def cursor(b: dict) -> str:
    """The key of a listed break as text (`next cursor`): business date.recon.break id."""
    return f"{b['business_date']}.{b['recon']}.{b['break_id']}"


def parse_cursor(text: str) -> tuple[date, str, str]:
    """A `cursor` back into the key `open_breaks(after=...)` takes."""
    day, recon, break_id = [*text.split(".", 2), "", ""][:3]
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        parsed = None
    if parsed is None or not recon or not break_id:
        raise InvalidInput(f"cursor: {text!r} is not a cursor of the breaks list")
    return parsed, recon, break_id


def check_recon(recon: str | None) -> None:
    """Refuse a reconciliation name no run has (a filter naming it would only find nothing)."""
    if recon is not None and recon not in RECONS:
        raise InvalidInput(f"recon: {recon!r} is not one of {', '.join(sorted(RECONS))}")


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
    decision_id = store.decide(ws, first["recon"], first["business_date"], ACTIONS[action], internal,
                               external, note, actor)
    sources.resolve_tickets_for(ws, sources.RECON_BREAK, list(wanted), actor, f"{action}: {note}")
    return decision_id


def sync_tickets(ws: Workspace, actor: str = sources.ACTOR) -> tuple[list[dict], list[dict]]:
    """Open a ticket for each break of the latest runs that has none (one per break however often this
    runs), and resolve the open tickets of breaks no longer in the latest runs: (opened, resolved)."""
    found = open_breaks(ws)
    events = [sources.Event(b["break_id"], b["first_seen_at"], 2, _describe(b)) for b in found]
    opened = sources.open_tickets_for_events(ws, sources.RECON_BREAK, events)
    current = {b["break_id"] for b in found}
    gone = [r for r in sources.open_references(ws, sources.RECON_BREAK) if r not in current]
    why = "break no longer in the latest run of its date (matched or decided)"
    resolved = sources.resolve_tickets_for(ws, sources.RECON_BREAK, gone, actor, why)
    return opened, resolved


def _describe(b: dict) -> str:
    ids = ", ".join((*b["internal_ids"], *b["external_ids"]))
    return (f"{b['recon']} break {b['break_id']} on {b['business_date']}: {b['status']} {ids} "
            f"({b['currency']} difference {b['amount_difference_minor']} minor units): {b['reason']}")
