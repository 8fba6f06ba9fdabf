"""Fair assignment under concurrency on PostgreSQL: clients creating tickets at once leave every agent of the
group within one ticket of the others, and an agent shared by two groups keeps a dense history."""

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from ops_pipeline.db.schema import ticket_assignments
from ops_pipeline.tickets import agents, groups
from ops_pipeline.tickets import tickets as t
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings

CLIENTS, EACH = 8, 250


def workspace(tmp_path, pg_url) -> Workspace:
    ws = Workspace(make_settings(tmp_path / "home", pg_url))
    ws.init()
    return ws


def hammer(ws, plan: list[int], each: int) -> list[str | None]:
    def client(group_id: int) -> list[str | None]:
        return [t.create_ticket(ws, "client", group_id=group_id, user_id="U")["agent_id"] for _ in range(each)]

    with ThreadPoolExecutor(len(plan)) as pool:
        return [a for picks in pool.map(client, plan) for a in picks]


def test_eight_clients_leave_every_agent_within_one_ticket(tmp_path, pg_url):
    ws = workspace(tmp_path, pg_url)
    try:
        g = groups.create_group(ws, "lead", "KYC")["group_id"]
        names = [f"agent{i:02}" for i in range(7)]
        for name in names:
            agents.create_agent(ws, "lead", name, name, f"{name}@ops.example", [g])
        picks = hammer(ws, [g] * CLIENTS, EACH)
        assert None not in picks and len(picks) == CLIENTS * EACH
        today = {a["agent_id"]: a["tickets_assigned_today"] for a in agents.list_agents(ws)}
        assert sum(today.values()) == CLIENTS * EACH
        assert max(today.values()) - min(today.values()) <= 1, today
    finally:
        ws.close()


def test_an_agent_shared_by_two_groups_keeps_a_dense_history(tmp_path, pg_url):
    ws = workspace(tmp_path, pg_url)
    try:
        kyc = groups.create_group(ws, "lead", "KYC")["group_id"]
        risk = groups.create_group(ws, "lead", "Risk")["group_id"]
        agents.create_agent(ws, "lead", "shared", "S", "s@ops.example", [kyc, risk])
        agents.create_agent(ws, "lead", "kyc1", "K", "k@ops.example", [kyc])
        agents.create_agent(ws, "lead", "risk1", "R", "r@ops.example", [risk])
        picks = hammer(ws, [kyc, risk, kyc, risk], 40)
        assert len(picks) == 160
        h = ticket_assignments
        with ws.engine.connect() as conn:
            rows = conn.execute(select(h.c.agent_id, func.count(), func.max(h.c.seq), func.max(h.c.day_seq))
                                .group_by(h.c.agent_id)).all()
        assert {r[0]: r[1] for r in rows} == {a: picks.count(a) for a in set(picks)}
        assert all(count == top == top_day for _, count, top, top_day in rows), rows
    finally:
        ws.close()
