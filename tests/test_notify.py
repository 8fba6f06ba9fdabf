"""The notification outbox and dispatcher against a real SMTP server (aiosmtpd) and a real webhook receiver
on 127.0.0.1: mails and posts arrive, failures are retried with backoff and recorded, unconfigured
channels keep the rows as recorded-not-sent, and a fund-out writes its notices with the payout."""

import email
import hashlib
import hmac
import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from ops_pipeline.db.schema import notification_attempts, outbox
from ops_pipeline.notify import Notification, dispatch, enqueue
from ops_pipeline.notify.dispatcher import MAX_ATTEMPTS
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{controller.port}"
    yield inbox
    controller.stop()


@pytest.fixture
def webhook():
    """Records posts; answers 500 to the first `fail` of them."""
    received, state = [], {"fail": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state["fail"] > 0:
                state["fail"] -= 1
                self.send_response(500)
            else:
                received.append((dict(self.headers), body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.received, server.state = received, state
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/ops"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def ws(tmp_path, db_url, smtp, webhook):
    workspace = Workspace(make_settings(tmp_path / "home", db_url, OPS_SMTP_URL=smtp.url,
                                        OPS_WEBHOOK_URL=webhook.url, OPS_WEBHOOK_SECRET="s3cret",
                                        OPS_SMTP_FROM="payouts@ops.test"))
    workspace.init()
    yield workspace
    workspace.close()


def notice(n=1):
    return Notification(event="fundout.paid", subject=f"Payout of {n}.00 EUR paid",
                        payload={"businessId": "B1", "amount": f"{n}.00"}, email="b1@example.test",
                        entity_type="payout", entity_id=f"p{n}")


def table(ws, t):
    with ws.engine.connect() as conn:
        return conn.execute(select(t).order_by(t.c.id)).all()


def test_mails_and_signed_webhooks_arrive_once_and_attempts_are_recorded(ws, smtp, webhook):
    with ws.engine.begin() as conn:
        assert enqueue(conn, [notice(1), notice(2)]) == 4
    assert dispatch(ws).counts == {"sent": 4, "retrying": 0, "dead": 0, "unsent": 0}
    assert dispatch(ws).handled == 0  # nothing twice
    assert [(to, m["Subject"], m["From"]) for to, m in smtp.mails] == [
        (["b1@example.test"], "Payout of 1.00 EUR paid", "payouts@ops.test"),
        (["b1@example.test"], "Payout of 2.00 EUR paid", "payouts@ops.test")]
    assert "amount: 1.00" in smtp.mails[0][1].get_payload()
    headers, body = webhook.received[0]
    assert json.loads(body)["data"] == {"businessId": "B1", "amount": "1.00"}
    assert headers["X-Ops-Event"] == "fundout.paid"
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Ops-Signature"] == f"sha256={expected}"
    assert {r.status for r in table(ws, outbox)} == {"sent"}
    attempts = table(ws, notification_attempts)
    assert len(attempts) == 4 and all(a.ok for a in attempts)
    assert {a.target for a in attempts} == {webhook.url, smtp.url.removeprefix("smtp://")}


def test_a_failing_webhook_is_retried_with_backoff_until_it_answers(ws, webhook):
    webhook.state["fail"] = 2
    with ws.engine.begin() as conn:
        enqueue(conn, [Notification(event="ops.alert", subject="x", payload={"a": 1})])
    t0 = datetime.now(UTC)
    assert dispatch(ws, now=t0).counts["retrying"] == 1
    assert dispatch(ws, now=t0).handled == 0  # not due before its backoff
    assert dispatch(ws, now=t0 + timedelta(seconds=31)).counts["retrying"] == 1
    assert dispatch(ws, now=t0 + timedelta(seconds=61)).handled == 0  # second backoff is 60 s
    assert dispatch(ws, now=t0 + timedelta(seconds=92)).counts["sent"] == 1
    attempts = table(ws, notification_attempts)
    assert [a.ok for a in attempts] == [False, False, True]
    assert "HTTP 500" in attempts[0].detail
    [row] = table(ws, outbox)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
    assert len(webhook.received) == 1


def test_a_notification_that_never_gets_through_is_dead_after_max_attempts(ws, webhook):
    webhook.state["fail"] = 100
    with ws.engine.begin() as conn:
        enqueue(conn, [Notification(event="ops.alert", subject="x")])
    at = datetime.now(UTC)
    for _ in range(MAX_ATTEMPTS):
        dispatch(ws, now=at)
        at += timedelta(hours=1)
    [row] = table(ws, outbox)
    assert (row.status, row.attempts) == ("dead", MAX_ATTEMPTS)
    assert len(table(ws, notification_attempts)) == MAX_ATTEMPTS


def test_unconfigured_channels_record_without_sending(tmp_path):
    workspace = Workspace(make_settings(tmp_path / "bare"))
    workspace.init()
    with workspace.engine.begin() as conn:
        enqueue(conn, [notice()])
    assert dispatch(workspace).counts["unsent"] == 2
    rows = table(workspace, outbox)
    assert {(r.channel, r.status) for r in rows} == {("email", "unsent"), ("webhook", "unsent")}
    assert any("OPS_SMTP_URL unset" in r.last_error for r in rows)
    assert table(workspace, notification_attempts) == []
    workspace.close()


def test_a_rolled_back_state_change_leaves_no_notification(ws):
    with pytest.raises(RuntimeError), ws.engine.begin() as conn:
        enqueue(conn, [notice()])
        raise RuntimeError("the state change failed")
    assert table(ws, outbox) == []


def test_a_fund_out_mails_the_merchant_on_success_and_failure_and_ops_on_a_bad_batch(tmp_path, smtp, sim,
                                                                                   sim_url):
    from ops_pipeline.fundout import batch, config
    from ops_pipeline.ledger.entries import Entry, post_entries

    workspace = Workspace(make_settings(tmp_path / "fo", OPS_SMTP_URL=smtp.url, OPS_BANK_URL=sim_url,
                                        OPS_ALERT_EMAIL="ops@ops.test"))
    workspace.init()
    post_entries(workspace, [Entry("ADJUSTMENT", f"f{b}", b, "EUR", 2_550, "adjustment") for b in ("B1", "B2")],
                 "funding")
    for b in ("B1", "B2"):
        config.create_config(workspace, b, {"freqType": "H", "enabled": True, "notifyEmail": f"{b}@m.test"}, "t")
    sim.block("B1")
    batch.run_due(workspace, "test", now=datetime(2026, 11, 21, 10, tzinfo=UTC))
    dispatch(workspace)
    workspace.close()
    by_recipient = {to[0]: m["Subject"] for to, m in smtp.mails}
    assert len(smtp.mails) == 3
    assert by_recipient["ops@ops.test"] == "Fund-out: 1 of 2 payouts failed"
    assert (by_recipient["B1@m.test"], by_recipient["B2@m.test"]) == (
        "Payout of 25.50 EUR failed", "Payout of 25.50 EUR paid")
