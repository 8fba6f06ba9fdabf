"""Tickets the system opens, on SQLite and PostgreSQL: a failed job opens one (never two while open, a new
one after it was resolved and the job failed again), a manual job one, a failed Dagster run one; the
sensor's cursor moves forward and its repeated ticks open nothing."""

import dagster as dg

from ops_pipeline.jobqueue import service
from ops_pipeline.tickets import agents, groups, sources
from ops_pipeline.tickets import tickets as t
from resources.ops import OpsResource
from sensors.tickets import job_tickets_sensor
from tests.conftest import make_settings


def failed_job(ws, title="Call the bank"):
    job, _ = service.create_job(ws, type="manual", attributes={"title": title}, actor="asha")
    service.cancel_job(ws, job.id, "asha", "wrong account")
    return job.id


def test_a_failed_job_opens_one_ticket_and_a_new_failure_after_resolving_another(ws):
    job_id = failed_job(ws)
    first = sources.open_tickets_for_failed_jobs(ws)
    [ticket] = first.opened
    assert (ticket["source"], ticket["reference"], ticket["status"], ticket["priority"]) == (
        "job", str(job_id), "open", 2)
    assert ticket["description"] == f"job {job_id} (manual) failed: cancelled: wrong account"
    assert groups.get_group(ws, ticket["group_id"])["name"] == "Ops"  # made on first use
    assert sources.open_tickets_for_failed_jobs(ws).opened == []  # scanned again: nothing
    assert sources.open_tickets_for_failed_jobs(ws, since=first.cursor).opened == []
    # it fails again while its ticket is open: still one open ticket
    service.retry_job(ws, job_id, "asha")
    service.cancel_job(ws, job_id, "asha", "again")
    assert sources.open_tickets_for_failed_jobs(ws).opened == []
    t.update_tickets(ws, "ops", [ticket["id"]], {"status": "resolved"})
    assert sources.open_tickets_for_failed_jobs(ws).opened == []  # that failure was covered
    service.retry_job(ws, job_id, "asha")
    service.cancel_job(ws, job_id, "asha", "third time")
    [again] = sources.open_tickets_for_failed_jobs(ws).opened
    assert again["reference"] == str(job_id) and again["id"] != ticket["id"]
    assert "third time" in again["description"]


def test_manual_jobs_and_run_failures_open_tickets_in_their_routed_groups(tmp_path, db_url):
    from ops_pipeline.workspace import Workspace

    ws = Workspace(make_settings(tmp_path / "routed", db_url, OPS_TICKETS_GROUP="Back office",
                                 OPS_TICKETS_ROUTES="run_failure=Data"))
    ws.init()
    try:
        data = groups.create_group(ws, "lead", "Data")["group_id"]
        agents.create_agent(ws, "lead", "dee", "Dee", "dee@ops.example", [data])
        job, _ = service.create_job(ws, type="manual", attributes={"title": "Fix a VPA"}, actor="asha",
                                    priority="High")
        [manual] = sources.open_tickets_for_manual_jobs(ws)
        assert (manual["source"], manual["reference"], manual["priority"]) == ("manual_job", str(job.id), 1)
        assert manual["description"] == f"manual job {job.id}: Fix a VPA"
        assert groups.get_group(ws, manual["group_id"])["name"] == "Back office"
        assert sources.open_tickets_for_manual_jobs(ws) == []
        assert sources.resolve_tickets_of_finished_manual_jobs(ws) == []  # the job still waits
        service.complete_manual(ws, job.id, "asha", "fixed")
        [done] = sources.resolve_tickets_of_finished_manual_jobs(ws)
        assert (done["id"], done["status"]) == (manual["id"], "resolved")
        assert sources.resolve_tickets_of_finished_manual_jobs(ws) == []
        from datetime import UTC, datetime

        failed_at = datetime.now(UTC)
        run = sources.open_ticket_for_run_failure(ws, "run-1", "ledger_ingest_job", "bad file", failed_at)
        assert (run["group_id"], run["agent_id"], run["reference"]) == (data, "dee", "run-1")
        assert sources.open_ticket_for_run_failure(ws, "run-1", "ledger_ingest_job", "bad", failed_at) is None
    finally:
        ws.close()


def test_the_sensor_keeps_a_forward_cursor_and_repeated_ticks_open_nothing(sqlite_ws):
    ops = OpsResource(ops_home=str(sqlite_ws.home))
    failed_job(sqlite_ws, "one")
    with dg.instance_for_test() as instance:
        def tick(cursor=None):
            with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"ops": ops}) as context:
                return job_tickets_sensor(context), context.cursor

        result, cursor = tick()
        assert result.skip_message == "opened 1 tickets for failed jobs, 0 for manual jobs; resolved 0 of manual jobs done"
        assert cursor is not None
        again, same = tick(cursor)
        assert (again.skip_message, same) == ("opened 0 tickets for failed jobs, 0 for manual jobs; resolved 0 of manual jobs done", cursor)
        assert tick()[0].skip_message.startswith("opened 0 tickets")  # from scratch: still covered
        failed_job(sqlite_ws, "two")
        later, moved = tick(cursor)
        assert later.skip_message.startswith("opened 1 tickets") and moved > cursor
    assert len(t.list_tickets(sqlite_ws, t.Filters(source="job")).tickets) == 2


def test_a_ticket_the_system_opens_alerts_its_agent_through_the_outbox(ws):
    from sqlalchemy import select

    from ops_pipeline.db.schema import outbox

    group = groups.create_group(ws, "ops", "Ops")
    agents.create_agent(ws, "ops", "a1", "Asha", "asha@ops.test", [group["group_id"]])
    job_id = failed_job(ws)
    [ticket] = sources.open_tickets_for_failed_jobs(ws).opened
    with ws.engine.connect() as conn:
        rows = conn.execute(select(outbox).where(outbox.c.event == "ticket.opened")).all()
    assert sorted((r.channel, r.recipient) for r in rows) == [("email", "asha@ops.test"), ("webhook", None)]
    assert rows[0].subject == f"Ticket {ticket['id']}: job {job_id}"
    assert rows[0].payload["agent_id"] == "a1" and rows[0].entity_id == str(ticket["id"])
