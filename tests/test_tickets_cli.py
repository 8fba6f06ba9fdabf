"""`ops-pipeline groups|agents|tickets ...` as ops run them: a team, tickets one by one and from a file,
assign, resolve, scan for failed jobs, and the errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).with_name("ops-pipeline"))


def run(home, *args, code=0):
    env = {**os.environ, "OPS_HOME": str(home)}
    p = subprocess.run([CLI, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == code, (p.stdout, p.stderr)
    return p.stdout + p.stderr


def test_tickets_from_the_command_line(tmp_path):
    home = tmp_path / "home"
    assert run(home, "groups", "create", "KYC") == "group 1: KYC\n"
    assert run(home, "tickets", "create", "--group", "KYC", "--user", "U1", "--priority", "2") == (
        "ticket 1: waiting for an available agent\n")
    assert run(home, "agents", "create", "asha", "--name", "Asha", "--email", "asha@ops.example",
               "--group", "KYC") == "agent asha: groups [1], 1 tickets assigned today\n"
    run(home, "agents", "create", "bo", "--name", "Bo", "--email", "bo@ops.example", "--group", "1")
    rows = tmp_path / "tickets.csv"
    rows.write_text("group,user_id,priority\n" + "".join(f"KYC,U{i},{1 + i % 5}\n" for i in range(5)))
    assert run(home, "tickets", "create", "--file", rows, "--actor", "loader") == (
        "created 5 tickets: asha 2, bo 3\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"group": "KYC", "priority": 0}\n')
    assert "bad.jsonl: row 1: priority: 0 is not an integer from 1 to 5" in run(
        home, "tickets", "create", "--file", bad, code=1)
    bad.write_text('{"group": "KYC", "priorty": 2}\n')
    assert "bad.jsonl: row 1: priorty: is not a column" in run(home, "tickets", "create", "--file", bad, code=1)
    assert run(home, "tickets", "assign", "2", "4", "--agent", "asha") == (
        "ticket 2: assigned to asha\nticket 4: assigned to asha\n")
    assert run(home, "tickets", "resolve", "2") == "ticket 2: resolved\n"
    listed = json.loads(run(home, "tickets", "list", "--agent", "asha", "--status", "open", "--format", "json"))
    assert [t["id"] for t in listed] == [5, 4, 3, 1]
    assert "asha: inactive" in run(home, "agents", "update", "asha", "--inactive")
    agents = {a["agent_id"]: a for a in json.loads(run(home, "agents", "list", "--format", "json"))}
    assert (agents["asha"]["tickets_assigned_today"], agents["asha"]["total_tickets_resolved"]) == (5, 1)
    assert agents["bo"]["tickets_assigned_today"] == 3 + 4
    assert "error: group 1: has 5 open tickets" in run(home, "groups", "delete", "KYC", code=1)
    assert "give --group" in run(home, "tickets", "create", code=2)
    run(home, "jobs", "create", "--type", "manual", "--attributes", '{"title": "Call the bank"}')
    run(home, "jobs", "cancel", "1", "--reason", "wrong account")
    assert run(home, "tickets", "scan").startswith("opened 1 tickets for failed jobs, 0 for manual jobs; resolved 0 of manual jobs done\n")
    [job_ticket] = json.loads(run(home, "tickets", "list", "--source", "job", "--format", "json"))
    assert (job_ticket["reference"], job_ticket["agent_id"]) == ("1", None)  # the "Ops" group has no agent
