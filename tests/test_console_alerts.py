"""The console's alerts on SQLite and PostgreSQL: the outbox rows meant for ops with their delivery attempts,
filters and pages; and the live stream (Server-Sent Events) from a real `ops-pipeline api`: an alert
written after connecting arrives as its table row, a reconnect resumes after `Last-Event-ID`, and the
stream ends by itself."""

import json
import re
import time

import httpx

from ops_pipeline.console import sessions
from ops_pipeline.notify import Notification, dispatch, enqueue
from ops_pipeline.notify.queries import newest_id
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings
from tests.console import console_client, next_link, text_of
from tests.servers import api, environment, free_port


def alert(kind: str, subject: str, email: str | None = None) -> Notification:
    if kind.startswith("fundout."):
        return Notification("ops.alert", subject, {"alert": kind}, email=email, entity_type="fundout_batch",
                            entity_id="7")
    return Notification("ticket.opened", subject, {"source": kind, "id": 3}, entity_type="ticket", entity_id="3")


def write(ws, *notices: Notification) -> None:
    with ws.engine.begin() as conn:
        enqueue(conn, list(notices))


def rows_of(html: str) -> list[str]:
    body = re.search(r'<table id="alerts">.*?<tbody[^>]*>(.*?)</tbody>', html, re.S).group(1)
    return [text_of(r) for r in re.findall(r"<tr id=\"alert-.*?</tr>", body, re.S)]


def test_alerts_show_ops_rows_with_their_delivery_attempts_by_status_and_kind(ws):
    write(ws, alert("fundout.failure_rate", "Fund-out: 3 of 10 payouts failed", email="ops@example.com"),
          alert("job", "Ticket 3: job 41"), alert("manual_job", "Ticket 4: manual job 42"),
          Notification("fundout.paid", "Payout of 10.00 EUR paid", {"id": 1}, entity_type="payout", entity_id="1"))
    closed = Workspace(make_settings(ws.settings.home, ws.settings.database_url,
                                     OPS_WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/hook"))
    try:
        dispatch(closed)  # webhooks fail (nothing listens) and wait for a retry; email is unset: unsent
    finally:
        closed.close()
    with console_client(ws, "analyst", "ann") as client:
        page = client.get("/console/alerts")
        assert page.status_code == 200, page.text
        rows = rows_of(page.text)
        assert [r.split(" ", 3)[3].split(" ")[0:3] for r in rows] == [
            ["Manual", "job", "Ticket"], ["Failed", "job", "Ticket"], ["Fund-out", "failure", "rate"],
            ["Fund-out", "failure", "rate"]]
        assert "Payout" not in page.text  # a merchant's notice is not an ops alert
        assert "webhook pending" in rows[0] and "failed" in rows[0] and "ConnectError" in rows[0]
        assert "email ops@example.com unsent" in rows[2] and "none yet" in rows[2] and "ConnectError" in rows[3]
        assert f'data-last="{newest_id(ws) - 1}"' in page.text  # the newest ops alert shown
        assert 'href="/console/tickets/3"' in page.text and 'href="/console/fundout/batches/7"' in page.text
        [unsent] = rows_of(client.get("/console/alerts?status=unsent").text)
        assert "Fund-out: 3 of 10 payouts failed" in unsent
        [manual] = rows_of(client.get("/console/alerts?kind=manual_job").text)
        assert "Ticket 4: manual job 42" in manual
        none = client.get("/console/alerts?kind=job&status=sent").text
        assert rows_of(none) == [] and "No alert with these filters." in text_of(none)
        for query, message in (("kind=coffee", "kind: 'coffee' is not one of"),
                               ("status=lost", "status: 'lost' is not one of pending, sent, unsent, dead"),
                               ("before=x1", "before: 'x1' is not an alert id")):
            r = client.get(f"/console/alerts?{query}")
            assert r.status_code == 400 and message in text_of(r.text), query


def test_alerts_are_paged_newest_first(ws):
    write(ws, *[alert("job", f"Ticket {i}: job {i}") for i in range(55)])
    with console_client(ws, "finance", "fiona") as client:
        first = client.get("/console/alerts")
        rows = rows_of(first.text)
        assert len(rows) == 50 and "Ticket 54:" in rows[0] and "Ticket 5:" in rows[-1]
        more = next_link(first.text)
        second = client.get(more)
        assert [r.split("Ticket ")[1].split(":")[0] for r in rows_of(second.text)] == ["4", "3", "2", "1", "0"]
        assert "data-last" not in second.text and 'rel="next"' not in second.text


def sign_in(client: httpx.Client, ws, role: str = "analyst") -> None:
    r = client.post(f"/console/login/{sessions.issue_link(ws, role, 'ann', actor='test')}")
    assert r.status_code == 303


def events(lines) -> dict:
    """The next SSE message's fields."""
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if fields:
                return fields
            continue
        name, _, value = line.partition(": ")
        fields[name] = value
    return fields


def test_the_stream_sends_alerts_written_after_connecting_and_ends_by_itself(ws, tmp_path):
    write(ws, alert("job", "Ticket 1: before connecting"))
    with api(environment(ws), tmp_path / "api.err") as base, httpx.Client(base_url=base, timeout=10) as client:
        sign_in(client, ws)
        started = time.monotonic()
        with client.stream("GET", "/console/alerts/stream?after=", timeout=httpx.Timeout(10, read=40)) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            assert events(lines) == {"retry": "1000", "id": str(newest_id(ws))}
            write(ws, Notification("fundout.paid", "Payout of 1.00 EUR paid", {"id": 9}))  # not for ops
            write(ws, alert("fundout.missed_slots", "Fund-out: 2 hourly slots missed, not paid"))
            got = events(lines)
            data = json.loads(got["data"])
            assert got["event"] == "alert" and got["id"] == str(data["id"]) == str(newest_id(ws))
            assert data["html"].startswith(f'<tr id="alert-{data["id"]}"')
            assert "Missed fund-out slots" in data["html"] and "2 hourly slots missed" in data["html"]
            assert events(lines) == {}  # nothing more: the stream ends by itself
        assert 20 < time.monotonic() - started < 35
        with client.stream("GET", "/console/alerts/stream?after=",
                           headers={"Last-Event-ID": str(data["id"] - 1)}) as again:
            lines = again.iter_lines()
            events(lines)
            assert json.loads(events(lines)["data"])["id"] == data["id"]  # resumed after the last id it had
