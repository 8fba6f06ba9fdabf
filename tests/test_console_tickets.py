"""The console's tickets pages on SQLite and PostgreSQL: my tickets, a group's queue (waiting first, keyset
pages), the agents' load today, marking an agent away (its tickets move and the page says where), resolving
and reassigning (DB, history and audit name the console user), roles, CSRF, 404 and 400."""

import re

from sqlalchemy import select, update

from ops_pipeline import audit
from ops_pipeline.db.schema import ticket_assignments, tickets
from ops_pipeline.tickets import agents, groups
from ops_pipeline.tickets import tickets as t
from tests.console import console_client, csrf, submit, text_of


def team(ws):
    """Group KYC with agents alice (the console user), bob and carol; six tickets; one waiting in Risk."""
    kyc = groups.create_group(ws, "lead", "KYC")["group_id"]
    risk = groups.create_group(ws, "lead", "Risk")["group_id"]
    for agent_id, name in (("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")):
        agents.create_agent(ws, "lead", agent_id, name, f"{agent_id}@ops.example", [kyc])
    made = [t.create_ticket(ws, "lead", group_id=kyc, user_id=f"U{i}") for i in range(6)]
    waiting = t.create_ticket(ws, "lead", group_id=risk, user_id="W1")
    return kyc, risk, made, waiting


def owners(ws, ids):
    return {v["id"]: v["agent_id"] for v in t.list_tickets(ws, t.Filters(), limit=500).tickets if v["id"] in ids}


def trail(ws, ticket_id):
    with ws.engine.connect() as conn:
        return [(e["action"], e["actor"]) for e in audit.history(conn, "ticket", str(ticket_id))]


def flash_of(html):
    return text_of(re.search(r'class="flash"[^>]*>(.*?)</p>', html, re.S).group(1))


def test_my_tickets_queue_and_load_today(ws):
    _, risk, made, waiting = team(ws)
    t.update_tickets(ws, "bob", [made[1]["id"]], {"status": "resolved"})  # bob's first
    assert [m["agent_id"] for m in made] == ["alice", "bob", "carol"] * 2
    with console_client(ws, sub="alice") as client:
        page = client.get("/console/tickets")
        assert page.status_code == 200
        mine = text_of(page.text.split('id="mine"')[1].split("</section>")[0])
        assert f"#{made[0]['id']}" in mine and f"#{made[3]['id']}" in mine and f"#{made[1]['id']}" not in mine
        load = text_of(page.text.split('id="load"')[1].split("</section>")[0])
        # agent, status, open now, assigned today, resolved today
        assert "Alice alice available 2 2 0" in load
        assert "Bob bob available 1 2 1" in load
        assert "Carol carol available 2 2 0" in load
        queue = page.text.split('id="queue"')[1]
        assert re.findall(r'id="ticket-(\d+)"', queue) == [str(m["id"]) for m in made if m is not made[1]]
        risk_page = text_of(client.get(f"/console/tickets?group={risk}").text)
        assert f"#{waiting['id']} 3 waiting" in risk_page and "This group has no agent" in risk_page
    with console_client(ws, role="analyst", sub="ann") as client:
        page = text_of(client.get("/console/tickets").text)
        assert "You (ann) are not an agent" in page and "Mark away" not in page


def test_the_queue_shows_waiting_tickets_first_a_page_at_a_time(ws):
    kyc = groups.create_group(ws, "lead", "KYC")["group_id"]
    agents.create_agent(ws, "lead", "dave", "Dave", "dave@ops.example", [kyc])
    ids = [v["id"] for v in t.create_tickets(ws, "lead", [t.NewTicket(group_id=kyc) for _ in range(60)])]
    with ws.engine.begin() as conn:  # five waiting at once, as between an agent leaving and another coming
        conn.execute(update(tickets).where(tickets.c.id.in_(ids[40:45])).values(agent_id=None))
    shown: list[tuple[int, str]] = []
    pages = 0
    with console_client(ws) as client:
        link = f"/console/tickets?group={kyc}"
        while link:
            queue = client.get(link).text.split('id="queue"')[1]
            pages += 1
            for row in queue.split('<tr id="ticket-')[1:]:
                shown.append((int(row.split('"')[0]), text_of(row.split('class="agent">')[1].split("</td>")[0])))
            found = [p.split('"')[0] for p in queue.split('href="')[1:] if "after=" in p.split('"')[0]]
            link = found[0].replace("&amp;", "&") if found else None
        assert client.get(f"/console/tickets?group={kyc}&after=x1").status_code == 400
        r = client.get("/console/tickets?group=999")
        assert r.status_code == 400 and "group: 999 is not a group" in r.text
        assert "group" in text_of(client.get("/console/tickets?group=abc").text)
    assert pages == 2
    assert shown == [(i, "waiting") for i in ids[40:45]] + [(i, "Dave") for i in ids[:40] + ids[45:]]


def test_marking_an_agent_away_moves_its_tickets_and_says_where(ws):
    kyc, _, made, _ = team(ws)
    bobs = [m["id"] for m in made if m["agent_id"] == "bob"]
    with console_client(ws, sub="olga") as client:
        r = submit(client, "/console/tickets/agents/bob/away", group=str(kyc))
        assert r.status_code == 303 and r.headers["location"] == f"/console/tickets?group={kyc}"
        page = client.get(r.headers["location"])
        flash = flash_of(page.text)
        now = owners(ws, set(bobs))
        assert set(now.values()) <= {"alice", "carol"} and "bob" not in now.values()
        names = {"alice": "Alice", "carol": "Carol"}
        assert flash.startswith("Bob is away. 2 tickets moved: ")
        for ticket_id, agent_id in now.items():
            assert f"#{ticket_id} → {names[agent_id]}" in flash
        load = text_of(page.text.split('id="load"')[1].split("</section>")[0])
        assert "Bob bob away 0" in load and "Mark available" in load
        with ws.engine.connect() as conn:
            h = ticket_assignments.c
            rows = conn.execute(select(h.ticket_id, h.kind, h.agent_id).where(h.actor == "olga")).all()
        assert sorted(rows) == sorted((i, "assigned", a) for i, a in now.items())  # history names the user ...
        assert all(trail(ws, i)[-1] == ("reassigned", "olga") for i in bobs)  # ... and so does the audit
        with ws.engine.connect() as conn:
            assert audit.history(conn, "agent", "bob")[-1]["actor"] == "olga"
        # everyone away: the tickets wait, and the message says so
        submit(client, "/console/tickets/agents/carol/away", group=str(kyc))
        r = submit(client, "/console/tickets/agents/alice/away", group=str(kyc))
        flash = flash_of(client.get(r.headers["location"]).text)
        assert "Alice is away. 6 tickets moved" in flash and flash.count("waiting (no available agent)") == 6
        r = submit(client, "/console/tickets/agents/bob/available", group=str(kyc))
        assert "Bob is available and took 6 waiting tickets." in client.get(r.headers["location"]).text
        assert submit(client, "/console/tickets/agents/nobody/away").status_code == 404


def test_resolve_and_reassign_change_the_ticket_and_name_the_console_user(ws):
    _, _, made, _ = team(ws)
    first, second = made[0]["id"], made[1]["id"]
    with console_client(ws, sub="lead") as client:
        page = text_of(client.get(f"/console/tickets/{first}").text)
        assert f"Ticket #{first} open" in page and "Alice alice" in page and "assigned Alice lead" in page
        r = submit(client, f"/console/tickets/{first}/resolve")
        assert r.status_code == 303 and r.headers["location"] == f"/console/tickets/{first}"
        page = text_of(client.get(r.headers["location"]).text)
        assert f"Ticket #{first} resolved." in page and "resolved Alice lead" in page
        assert t.get_ticket(ws, first)["status"] == "resolved" and trail(ws, first)[-1] == ("resolved", "lead")
        r = submit(client, f"/console/tickets/{second}/reassign", agent_id="carol")
        assert "reassigned to Carol" in client.get(r.headers["location"]).text
        assert t.get_ticket(ws, second)["agent_id"] == "carol" and trail(ws, second)[-1] == ("reassigned", "lead")
        with ws.engine.connect() as conn:
            last = conn.execute(select(ticket_assignments).where(ticket_assignments.c.ticket_id == second)
                                .order_by(ticket_assignments.c.id.desc())).first()
        assert (last.kind, last.agent_id, last.actor) == ("assigned", "carol", "lead")
        # bad input: an unknown agent (409 from the domain), none given (400), a resolved ticket (409)
        assert submit(client, f"/console/tickets/{second}/reassign", agent_id="zed").status_code == 409
        r = submit(client, f"/console/tickets/{second}/reassign")
        assert r.status_code == 400 and "agentId" in r.text
        assert submit(client, f"/console/tickets/{first}/reassign", agent_id="bob").status_code == 409
        assert client.get("/console/tickets/999999").status_code == 404
        assert submit(client, "/console/tickets/999999/resolve").status_code == 404
        assert client.get("/console/tickets/0").status_code in (400, 404)


def test_only_ops_act_finance_does_not_read_and_forms_need_csrf(ws):
    *_, made, _ = team(ws)
    ticket = made[0]["id"]
    for role in ("analyst", "finance"):
        with console_client(ws, role=role, sub="x") as client:
            token = csrf(client)
            for path in (f"/console/tickets/{ticket}/resolve", "/console/tickets/agents/bob/away"):
                assert submit(client, path, token=token).status_code == 403
    with console_client(ws, role="analyst", sub="ann") as client:
        assert client.get(f"/console/tickets/{ticket}").status_code == 200
    with console_client(ws, role="finance", sub="fiona") as client:
        r = client.get("/console/tickets")
        assert r.status_code == 403 and "does not read tickets" in r.text
        assert client.get(f"/console/tickets/{ticket}").status_code == 403
    with console_client(ws) as client:
        assert submit(client, f"/console/tickets/{ticket}/resolve", token="").status_code == 403
        assert submit(client, "/console/tickets/agents/bob/away", token="").status_code == 403
    assert t.get_ticket(ws, ticket)["status"] == "open"
    assert agents.get_agent(ws, "bob")["active_status"] is True
