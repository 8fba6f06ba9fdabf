"""`ops-pipeline jobs ...` as ops run it: create, list, show, approve (four eyes), worker, sweep, errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

from ops_pipeline.jobqueue.jobtypes import job_types_catalog

CLI = str(Path(sys.executable).with_name("ops-pipeline"))


def run(home, *args, code=0):
    env = {**os.environ, "OPS_HOME": str(home)}
    p = subprocess.run([CLI, "jobs", *map(str, args)], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == code, (p.stdout, p.stderr)
    return p.stdout + p.stderr


def test_jobs_from_the_command_line(tmp_path):
    home = tmp_path / "home"
    example = next(t["example"] for t in job_types_catalog() if t["type"] == "principal_onboarding")
    (tmp_path / "p.json").write_text(json.dumps(example))
    assert run(home, "create", "--type", "principal_onboarding", "--attributes", f"@{tmp_path / 'p.json'}",
               "--actor", "asha", "--idempotency-key", "p1") == "job 1: principal_onboarding Awaiting Approval\n"
    assert "existing job with this key" in run(home, "create", "--type", "principal_onboarding", "--attributes",
                                               f"@{tmp_path / 'p.json'}", "--actor", "asha", "--idempotency-key", "p1")
    assert "error: job 1: approver 'asha' created it" in run(home, "approve", "1", "--actor", "asha", code=1)
    assert run(home, "approve", "1", "--actor", "vikram") == "job 1: Created\n"
    assert "attributes.title: is required" in run(home, "create", "--type", "manual", "--attributes", "{}", code=1)
    assert "attributes: not valid JSON" in run(home, "create", "--type", "manual", "--attributes", "{", code=1)
    assert "priority: 'Soon' is not one of High, Medium, Low" in run(
        home, "create", "--type", "manual", "--attributes", '{"title": "x"}', "--priority", "Soon", code=1)
    out = run(home, "worker", "--threads", "1", "--poll", "0.1", "--until-idle")
    assert "claimed 1, completed 1, retried 0, failed 0" in out
    shown = json.loads(run(home, "show", "1"))
    assert shown["state"] == "Completed" and example["upi_vpas"][0] not in json.dumps(shown)
    rows = json.loads(run(home, "list", "--format", "json"))
    assert [(r["id"], r["state"]) for r in rows] == [(1, "Completed")]
    assert run(home, "sweep") == "rescued 0, failed 0, expired 0\n"
    assert "Missing option '--reason'" in run(home, "reject", "1", code=2)
    assert run(home, "create", "--type", "manual", "--attributes", '{"title": "next"}', "--depends-on", "1") == (
        "job 3: manual Created (after job 1)\n")
    assert "error: dependsOn: job 99 does not exist" in run(
        home, "create", "--type", "manual", "--attributes", '{"title": "x"}', "--depends-on", "99", code=1)
