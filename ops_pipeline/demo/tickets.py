"""The demo's ticketing chapter: two teams, three agents, a morning of KYC and risk checks assigned
fairly, the manual job and failed jobs turned into tickets, and an agent going off shift."""

from __future__ import annotations

from collections.abc import Callable

from ops_pipeline.errors import NotFound
from ops_pipeline.tickets import agents, groups, sources
from ops_pipeline.tickets.tickets import NewTicket, create_tickets
from ops_pipeline.workspace import Workspace

ACTOR = "demo-lead"
AGENTS = (
    ("asha", "Asha Rao", ("KYC",)),
    ("vikram", "Vikram Shah", ("KYC", "Risk")),
    ("meera", "Meera Iyer", ("Risk",)),
)


def _group(ws: Workspace, name: str) -> int:
    found = [g for g in groups.list_groups(ws) if g["name"] == name]
    return found[0]["group_id"] if found else groups.create_group(ws, ACTOR, name)["group_id"]


def _agent(ws: Workspace, agent_id: str, name: str, group_ids: list[int]) -> None:
    try:
        agents.update_agent(ws, ACTOR, agent_id, {"active_status": True})
    except NotFound:
        agents.create_agent(ws, ACTOR, agent_id, name, f"{agent_id}@ops.example", group_ids)


def run_tickets(ws: Workspace, echo: Callable[[str], None]) -> None:
    ids = {name: _group(ws, name) for name in ("KYC", "Risk")}
    for agent_id, name, teams in AGENTS:
        _agent(ws, agent_id, name, [ids[t] for t in teams])
    checks = [
        NewTicket(group_id=ids["KYC"], user_id=f"MER-{i:04d}", priority=2, description="KYC refresh")
        for i in range(1, 10)
    ]
    checks += [
        NewTicket(group_id=ids["Risk"], user_id=f"MER-{i:04d}", priority=1, description="velocity alert")
        for i in range(20, 26)
    ]
    created = create_tickets(ws, ACTOR, checks)
    opened = sources.open_tickets_for_failed_jobs(ws).opened + sources.open_tickets_for_manual_jobs(ws)
    echo(
        f"Ticketing: {len(created)} KYC and risk checks assigned; {len(opened)} opened from the job queue "
        f"(failed and manual jobs; waiting unassigned while group Ops has no agent)"
    )
    agents.update_agent(ws, ACTOR, "vikram", {"active_status": False})
    echo("  vikram goes off shift: his open tickets move to the others by the same rule")
    for agent in agents.list_agents(ws):
        echo(
            f"  {agent['agent_id']:<7} {'available' if agent['active_status'] else 'away':<9} "
            f"assigned today {agent['tickets_assigned_today']:>2}, "
            f"in total {agent['total_tickets_assigned']:>3}"
        )
