"""Ticket assignment on SQLite and PostgreSQL: the rule and its ties, waiting tickets, redistribution, group
deletion, counters derived from the history ("today" in OPS_TIMEZONE), audit of every change kind."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from ops_pipeline import audit
from ops_pipeline.db.schema import ticket_assignments
from ops_pipeline.errors import Conflict, InvalidInput
from ops_pipeline.tickets import agents, groups, model
from ops_pipeline.tickets import tickets as t
from ops_pipeline.tickets.batching import CreateBatcher
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings


def group(ws, name="KYC"):
    return groups.create_group(ws, "lead", name)["group_id"]


def agent(ws, agent_id, *group_ids, active=True):
    return agents.create_agent(ws, "lead", agent_id, agent_id.upper(), f"{agent_id}@ops.example",
                               list(group_ids), active)


def new(ws, group_id, n=1, **fields):
    return [t.create_ticket(ws, "lead", group_id=group_id, user_id=f"U{i}", **fields)["agent_id"]
            for i in range(n)]


def counters(ws, field="tickets_assigned_today"):
    return {a["agent_id"]: a[field] for a in agents.list_agents(ws)}


def trail(ws, entity_type, entity_id):
    with ws.engine.connect() as conn:
        return [(e["action"], e["before"], e["after"]) for e in audit.history(conn, entity_type, str(entity_id))]


def test_fewest_today_then_least_recently_assigned_then_lowest_id(ws):
    g = group(ws)
    for a in ("b", "c", "a"):
        agent(ws, a, g)
    # all at 0, never assigned: lowest id first; then each once: least recently assigned first
    assert new(ws, g, 6) == ["a", "b", "c", "a", "b", "c"]
    agent(ws, "d", g)  # fewest today wins over everything
    assert new(ws, g, 3) == ["d", "d", "a"]
    # a ticket resolved does not lower a count: assignments are what counts
    [first] = t.list_tickets(ws, t.Filters(agent_id="b"), limit=1).tickets
    t.update_tickets(ws, "b", [first["id"]], {"status": "resolved"})
    assert new(ws, g, 2) == ["b", "c"]
    assert counters(ws) == {"a": 3, "b": 3, "c": 3, "d": 2}
    assert counters(ws, "tickets_resolved_today") == {"a": 0, "b": 1, "c": 0, "d": 0}


def test_no_active_agent_waits_then_goes_to_the_first_available(ws):
    g, other = group(ws), group(ws, "Risk")
    waiting = [t.create_ticket(ws, "lead", group_id=g, user_id="U1", priority=p) for p in (3, 1, 2)]
    assert [w["agent_id"] for w in waiting] == [None, None, None]
    agent(ws, "x", other)  # another group's agent takes nothing
    agent(ws, "sleepy", g, active=False)
    assert {w["id"]: t.get_ticket(ws, w["id"])["agent_id"] for w in waiting} == dict.fromkeys(
        [w["id"] for w in waiting])
    agents.update_agent(ws, "lead", "sleepy", {"active_status": True})  # PATCH activeStatus true
    assert [t.get_ticket(ws, w["id"])["agent_id"] for w in waiting] == ["sleepy"] * 3
    assert trail(ws, "ticket", waiting[0]["id"])[-1] == ("assigned", {"agent_id": None}, {"agent_id": "sleepy"})
    # joining a group takes its waiting tickets too; POSTing an agent does the same
    g2 = group(ws, "Payouts")
    later = new(ws, g2, 2)
    assert later == [None, None]
    agents.update_agent(ws, "lead", "x", {"group_ids": [other, g2]})
    agent(ws, "y", g2)
    assert sorted(r["agent_id"] for r in t.list_tickets(ws, t.Filters(group_id=g2)).tickets) == ["x", "x"]


def test_unavailable_or_deleted_agent_hands_its_open_tickets_to_the_fewest_assigned(ws):
    kyc, risk = group(ws), group(ws, "Risk")
    agent(ws, "a", kyc, risk)
    agent(ws, "b", kyc)
    agent(ws, "c", kyc)
    assert new(ws, kyc, 3) == ["a", "b", "c"]
    assert new(ws, risk, 2) == ["a", "a"]  # risk has only a
    assert new(ws, kyc, 2) == ["b", "c"]  # a has 3 today
    agents.update_agent(ws, "lead", "a", {"active_status": False})  # PATCH activeStatus false
    by_agent = sorted((r["agent_id"] or "-", r["group_id"]) for r in t.list_tickets(ws, t.Filters(status="open")).tickets)
    # a's kyc ticket goes to b (tied with c at 2 today, assigned less recently); its risk ones wait
    assert by_agent == [("-", risk), ("-", risk), ("b", kyc), ("b", kyc), ("b", kyc), ("c", kyc), ("c", kyc)]
    assert counters(ws) == {"a": 3, "b": 3, "c": 2}  # the history is never rewritten
    assert trail(ws, "ticket", 1)[-1] == ("reassigned", {"agent_id": "a"}, {"agent_id": "b"})
    assert trail(ws, "ticket", 4)[-1] == ("unassigned", {"agent_id": "a"}, {"agent_id": None})
    assert agents.delete_agent(ws, "lead", "b") == {"agent_id": "b", "reassigned_tickets": 3}
    assert {r["agent_id"] for r in t.list_tickets(ws, t.Filters(group_id=kyc, status="open")).tickets} == {"c"}
    assert trail(ws, "agent", "b")[-1][0] == "deleted"
    assert agents.list_agents(ws, group_id=kyc) == [agents.get_agent(ws, "a"), agents.get_agent(ws, "c")]
    with pytest.raises(Conflict, match="agentId: 'b' belonged to a deleted agent"):  # it would inherit b's counts
        agents.create_agent(ws, "lead", "b", "Bo", "bo@ops.example", [kyc])


def test_group_delete_is_refused_with_open_tickets_unless_moved(ws):
    kyc, risk = group(ws), group(ws, "Risk")
    agent(ws, "a", kyc)
    agent(ws, "r", risk)
    ids = [t.create_ticket(ws, "lead", group_id=kyc, user_id="U")["id"] for _ in range(2)]
    with pytest.raises(Conflict, match=r"group \d+: has 2 open tickets") as err:
        groups.delete_group(ws, "lead", kyc)
    assert err.value.code == "GROUP_HAS_OPEN_TICKETS"
    with pytest.raises(InvalidInput, match="moveTo"):
        groups.delete_group(ws, "lead", kyc, move_to=999)
    assert groups.delete_group(ws, "lead", kyc, move_to=risk) == {"group_id": kyc, "moved_tickets": 2,
                                                                   "moved_to": risk}
    assert [(x["group_id"], x["agent_id"]) for x in (t.get_ticket(ws, i) for i in ids)] == [(risk, "r")] * 2
    assert agents.get_agent(ws, "a")["group_ids"] == []
    assert [a for a, _, _ in trail(ws, "ticket", ids[0])] == ["created", "moved", "assigned"]
    assert trail(ws, "group", kyc)[-1][0] == "deleted"
    # only resolved tickets left: deletion goes through
    t.update_tickets(ws, "lead", ids, {"status": "resolved"})
    assert groups.delete_group(ws, "lead", risk)["moved_tickets"] == 0


def test_counters_come_from_the_history_and_today_is_local(tmp_path, db_url, monkeypatch):
    ws = Workspace(make_settings(tmp_path / "ist", db_url, OPS_TIMEZONE="Asia/Kolkata"))
    ws.init()
    try:
        g = group(ws)
        agent(ws, "a", g)
        agent(ws, "b", g)
        clock = [datetime(2026, 3, 1, 18, 29, tzinfo=UTC)]  # 23:59 in Kolkata
        monkeypatch.setattr(model, "now", lambda: clock[0])
        first = new(ws, g, 3)
        assert first == ["a", "b", "a"]
        assert counters(ws) == {"a": 2, "b": 1}
        clock[0] += timedelta(minutes=2)  # 00:01 the next local day, still 1 March in UTC
        assert counters(ws) == {"a": 0, "b": 0}
        assert counters(ws, "total_tickets_assigned") == {"a": 2, "b": 1}
        # a new day: fewest today is a tie at 0; least recently assigned is b
        assert new(ws, g, 3) == ["b", "a", "b"]
        ids = [r["id"] for r in t.list_tickets(ws, t.Filters(agent_id="b")).tickets]
        t.update_tickets(ws, "b", ids, {"status": "resolved"})
        view = agents.get_agent(ws, "b")
        assert (view["tickets_assigned_today"], view["total_tickets_assigned"], view["tickets_resolved_today"],
                view["total_tickets_resolved"]) == (2, 3, 3, 3)
        with ws.engine.connect() as conn:  # the counters are the history counted
            counted = dict(conn.execute(select(ticket_assignments.c.agent_id, func.count())
                                        .where(ticket_assignments.c.kind == "assigned")
                                        .group_by(ticket_assignments.c.agent_id)).all())
        assert counted == counters(ws, "total_tickets_assigned")
    finally:
        ws.close()


def test_batch_create_assigns_in_memory_like_one_by_one(ws):
    g = group(ws)
    for a in ("a", "b", "c"):
        agent(ws, a, g)
    made = t.create_tickets(ws, "loader", [t.NewTicket(group_id=g, user_id=f"U{i}", priority=1 + i % 5)
                                           for i in range(10)])
    assert [m["agent_id"] for m in made] == ["a", "b", "c"] * 3 + ["a"]
    assert [m["priority"] for m in made[:6]] == [1, 2, 3, 4, 5, 1]
    assert new(ws, g, 2) == ["b", "c"]
    with pytest.raises(InvalidInput, match="groupId: no group 999"):
        t.create_tickets(ws, "loader", [t.NewTicket(group_id=999)])
    with pytest.raises(InvalidInput, match="priority: 9 is not an integer from 1 to 5"):
        t.create_tickets(ws, "loader", [t.NewTicket(group_id=g, priority=9)])
    with pytest.raises(Conflict, match="earlier ticket of this batch"):
        t.create_tickets(ws, "loader", [t.NewTicket(group_id=g, source="job", reference="7")] * 2)


def test_updates_reassign_resolve_reopen_and_every_change_is_audited(ws):
    g = group(ws)
    agent(ws, "a", g)
    agent(ws, "b", g)
    ticket = t.create_ticket(ws, "lead", group_id=g, user_id="U1", priority=2, source="job", reference="42")
    tid = ticket["id"]
    with pytest.raises(Conflict, match=r"ticket \d+ is open for job '42'"):
        t.create_ticket(ws, "lead", group_id=g, source="job", reference="42")
    t.update_tickets(ws, "lead", [tid], {"agent_id": "b", "priority": 1})
    with pytest.raises(Conflict, match="'zed' is not an available agent"):
        t.update_tickets(ws, "lead", [tid], {"agent_id": "zed"})
    t.update_tickets(ws, "lead", [tid], {"priority": 4})
    t.update_tickets(ws, "lead", [tid], {"status": "resolved"})
    with pytest.raises(Conflict, match="is resolved"):
        t.update_tickets(ws, "lead", [tid], {"agent_id": "a"})
    t.create_ticket(ws, "lead", group_id=g, source="job", reference="42")  # a new one may open now
    with pytest.raises(Conflict, match="already open for job '42'"):
        t.update_tickets(ws, "lead", [tid], {"status": "open"})
    agents.update_agent(ws, "lead", "b", {"active_status": False, "name": "Bea"})
    gone = t.delete_ticket(ws, "lead", tid)
    assert gone["status"] == "resolved"
    actions = trail(ws, "ticket", tid)
    assert [a for a, _, _ in actions] == ["created", "reassigned", "updated", "resolved", "deleted"]
    assert actions[0][2]["agent_id"] == "a" and actions[0][1] is None
    assert actions[1][1] == {"agent_id": "a", "priority": 2, "assigned_at": ticket["assigned_at"]}
    assert actions[1][2]["agent_id"] == "b" and actions[1][2]["priority"] == 1
    assert actions[2][1:] == ({"priority": 1}, {"priority": 4})
    assert actions[3][1] == {"status": "open", "resolved_at": None} and actions[3][2]["status"] == "resolved"
    assert actions[4][1]["id"] == tid and actions[4][2] is None
    assert trail(ws, "agent", "b") == [
        ("created", None, {"agent_id": "b", "name": "B", "email": "b@ops.example", "group_ids": [g],
                           "active_status": True}),
        ("updated", {"name": "B", "active_status": True}, {"name": "Bea", "active_status": False}),
    ]
    groups.update_group(ws, "lead", g, {"name": "Know Your Customer", "active_status": False})
    assert trail(ws, "group", g)[-1] == ("updated", {"name": "KYC", "active_status": True},
                                         {"name": "Know Your Customer", "active_status": False})
    with pytest.raises(Conflict, match="inactive") as err:
        t.create_ticket(ws, "lead", group_id=g)
    assert err.value.code == "GROUP_INACTIVE"


def test_the_create_batcher_answers_each_request_in_arrival_order(ws):
    g = group(ws)
    agent(ws, "a", g)
    agent(ws, "b", g)
    batcher = CreateBatcher(ws)
    futures = [batcher.submit("api", t.NewTicket(group_id=g, user_id=f"U{i}")) for i in range(4)]
    futures += [batcher.submit("api", t.NewTicket(group_id=g, source="job", reference="9")) for _ in range(2)]
    futures.append(batcher.submit("api", t.NewTicket(group_id=999)))
    with pytest.raises(InvalidInput, match="priority"):
        batcher.submit("api", t.NewTicket(group_id=g, priority=0))
    assert [f.result(timeout=30)["agent_id"] for f in futures[:4]] == ["a", "b", "a", "b"]
    outcomes = sorted(type(f.exception(timeout=30)).__name__ for f in futures[4:])
    assert outcomes == ["Conflict", "InvalidInput", "NoneType"]


def test_a_batch_across_groups_sharing_an_agent_assigns_as_one_at_a_time_would(ws):
    from ops_pipeline.tickets import agents, groups
    from ops_pipeline.tickets.tickets import NewTicket, create_tickets

    g1, g2 = (groups.create_group(ws, "ops", name)["group_id"] for name in ("G1", "G2"))
    agents.create_agent(ws, "ops", "a", "A", "a@ops.example", [g1, g2])
    agents.create_agent(ws, "ops", "b", "B", "b@ops.example", [g1])
    agents.create_agent(ws, "ops", "c", "C", "c@ops.example", [g2])
    made = create_tickets(ws, "ops", [NewTicket(group_id=g) for g in (g1, g1, g2, g2, g1, g2)])
    assert [t["agent_id"] for t in made] == ["a", "b", "c", "a", "b", "c"]


def test_resolving_while_reassigning_counts_for_the_resolver_and_a_gone_group_refuses_a_reopen(ws):
    from ops_pipeline.errors import Conflict
    from ops_pipeline.tickets import agents, groups
    from ops_pipeline.tickets import tickets as t

    g1 = groups.create_group(ws, "ops", "G1")["group_id"]
    agents.create_agent(ws, "ops", "a", "A", "a@ops.example", [g1])
    agents.create_agent(ws, "ops", "b", "B", "b@ops.example", [g1])
    ticket = t.create_ticket(ws, "ops", group_id=g1)
    other = "b" if ticket["agent_id"] == "a" else "a"
    t.update_tickets(ws, "ops", [ticket["id"]], {"agent_id": other, "status": "resolved"})
    assert agents.get_agent(ws, other)["total_tickets_resolved"] == 1
    groups.update_group(ws, "ops", g1, {"active_status": False})
    with pytest.raises(Conflict, match=r"groupId: .* is deleted or inactive"):
        t.update_tickets(ws, "ops", [ticket["id"]], {"status": "open"})
    assert t.get_ticket(ws, ticket["id"])["status"] == "resolved"
