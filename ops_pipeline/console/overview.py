"""What the console's overview shows, read in one go: indexed aggregates over the operational DB, the open
quarantine from the lake, and the latest ledger replay check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from ops_pipeline.db.schema import audit_log, jobs, jobs_archive, ticket_agents, ticket_groups, tickets
from ops_pipeline.fundout.batch import BatchReport, list_batches
from ops_pipeline.jobqueue.model import State
from ops_pipeline.ledger.queries import open_quarantine_by_reason
from ops_pipeline.ledger.snapshots import REPLAY_CHECK
from ops_pipeline.workspace import Workspace

HOURS = 24


@dataclass(frozen=True)
class Overview:
    live_jobs: dict[str, dict[str, int]]  # type -> state -> count, jobs not yet finished
    finished_24h: dict[str, int]  # state -> jobs that ended in the last 24 h
    per_hour: list[tuple[datetime, int, int]]  # (hour, completed, failed) for each of the last 24 hours
    open_tickets: list[tuple[str, str, int]]  # (group, agent name or '' when unassigned, count)
    batches: list[BatchReport]
    quarantine: dict[str, int]  # reason code -> open rows
    replay: dict[str, Any] | None  # the latest replay check: at, action (passed | failed), after

    @property
    def awaiting_approval(self) -> int:
        return sum(states.get(State.AWAITING_APPROVAL, 0) for states in self.live_jobs.values())

    @property
    def states(self) -> list[str]:
        return [s.value for s in State if s.value in {k for v in self.live_jobs.values() for k in v}]


def overview(ws: Workspace, now: datetime | None = None) -> Overview:
    now = now or datetime.now(UTC)
    since = now - timedelta(hours=HOURS)
    with ws.read_engine.connect() as conn:
        live: dict[str, dict[str, int]] = {}
        for type_, state, n in conn.execute(
            select(jobs.c.type, jobs.c.state, func.count()).group_by(jobs.c.type, jobs.c.state)
        ):
            live.setdefault(type_, {})[state] = n
        per_hour, finished = _finished(conn, since)
        open_tickets = _open_tickets(conn)
        replay = conn.execute(
            select(audit_log.c.at, audit_log.c.action, audit_log.c.after)
            .where(audit_log.c.entity_type == "ledger_check", audit_log.c.entity_id == REPLAY_CHECK)
            .order_by(audit_log.c.id.desc()).limit(1)
        ).first()
    return Overview(
        live_jobs=dict(sorted(live.items())), finished_24h=finished, per_hour=per_hour,
        open_tickets=open_tickets, batches=list_batches(ws, limit=5).batches,
        quarantine=open_quarantine_by_reason(ws), replay=dict(replay._mapping) if replay else None,
    )


def _finished(conn: Connection, since: datetime) -> tuple[list[tuple[datetime, int, int]], dict[str, int]]:
    """Jobs that ended since `since`: completed and failed per hour (the last 24 whole or current hours, zeros
    filled in) and the totals by state, from one grouped query over the index on (archived_at, state)."""
    at, state = jobs_archive.c.archived_at, jobs_archive.c.state
    pg = conn.dialect.name == "postgresql"
    hour = func.date_trunc("hour", at) if pg else func.strftime("%Y-%m-%dT%H", at)
    found: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    rows = conn.execute(select(hour, state, func.count()).where(at >= since).group_by(hour, state))
    for bucket, ended, n in rows:
        key = bucket.strftime("%Y-%m-%dT%H") if isinstance(bucket, datetime) else bucket
        found.setdefault(key, {})[ended] = n
        totals[ended] = totals.get(ended, 0) + n
    first = since.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours = [first + timedelta(hours=i) for i in range(HOURS)]
    per_hour = []
    for h in hours:
        counts = found.get(h.strftime("%Y-%m-%dT%H"), {})
        per_hour.append((h, counts.get(State.COMPLETED, 0), counts.get(State.FAILED, 0)))
    return per_hour, totals


def _open_tickets(conn: Connection) -> list[tuple[str, str, int]]:
    """Open tickets per group and agent (from the partial index alone), then the few names."""
    counts = conn.execute(
        select(tickets.c.group_id, tickets.c.agent_id, func.count())
        .where(tickets.c.status == "open").group_by(tickets.c.group_id, tickets.c.agent_id)
    ).all()
    groups = dict(conn.execute(select(ticket_groups.c.group_id, ticket_groups.c.name)
                               .where(ticket_groups.c.group_id.in_({g for g, _, _ in counts}))).all())
    agents = dict(conn.execute(select(ticket_agents.c.agent_id, ticket_agents.c.name)
                               .where(ticket_agents.c.agent_id.in_({a for _, a, _ in counts if a}))).all())
    return sorted((groups.get(g, str(g)), agents.get(a, a) if a else "", n) for g, a, n in counts)
