"""Fund-out execution over REST: the internal batch trigger (202, runs after answering), batch status,
manual cash-out and the payout list, with their roles; the Dagster job and schedule for a slot."""

import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from ops_pipeline.api.app import create_app
from ops_pipeline.auth import mint_token
from ops_pipeline.fundout import config
from ops_pipeline.ledger import balances
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings


@pytest.fixture
def client(tmp_path, db_url, sim_url):
    ws = Workspace(make_settings(tmp_path / "home", db_url, OPS_BANK_URL=sim_url))
    ws.init()
    post_entries(ws, [Entry("ADJUSTMENT", "f1", "B1", "EUR", 12_345, "adjustment"),
                      Entry("ADJUSTMENT", "f2", "B2", "EUR", 500, "adjustment")], "funding")
    config.create_config(ws, "B1", {"freqType": "H", "enabled": True, "minimumBalance": "23.45"}, "ops:t")
    with TestClient(create_app(ws.settings)) as c:
        c.ws = ws
        yield c
    ws.close()


def auth(client, role, sub):
    return {"Authorization": f"Bearer {mint_token(client.ws.settings, role, sub)}"}


def wait_done(client, batch_id, seconds=60):
    """The batch runs on its own thread after the 202: poll its status."""
    deadline = time.monotonic() + seconds
    while True:
        got = client.get(f"/business/autofundout/batches/{batch_id}", headers=auth(client, "ops", "alice"))
        assert got.status_code == 200
        if got.json()["status"] == "done" or time.monotonic() > deadline:
            return got.json()
        time.sleep(0.05)


def test_trigger_answers_202_with_the_batch_and_the_batch_runs(client, sim):
    r = client.post("/business/autofundout", headers=auth(client, "internal", "scheduler"))
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["status"] == "queued" and started["slot"].endswith(":00:00+00:00")
    assert started["message"] == f"Fund-out batch {started['batchId']} of slot {started['slot']} accepted"
    done = wait_done(client, started["batchId"])
    assert (done["status"], done["summary"]["paid"], done["summary"]["amounts"]["paid"]) == ("done", 1, {"EUR": "100.00"})
    assert [b.available_minor for b in balances.get_balances(client.ws, "B1")] == [2_345]
    again = client.post("/business/autofundout", headers=auth(client, "internal", "scheduler"))
    assert (again.status_code, again.json()["batchId"]) == (202, started["batchId"])
    wait_done(client, started["batchId"])
    assert len(sim.state()["payouts"]) == 1


def test_trigger_is_internal_only_and_batches_are_read_by_ops_finance_internal(client):
    assert client.post("/business/autofundout", headers=auth(client, "ops", "alice")).status_code == 403
    assert client.post("/business/autofundout", headers=auth(client, "merchant", "B1")).status_code == 403
    assert client.post("/business/autofundout").status_code == 401
    assert client.get("/business/autofundout/batches/1", headers=auth(client, "merchant", "B1")).status_code == 403
    missing = client.get("/business/autofundout/batches/999", headers=auth(client, "finance", "f"))
    assert (missing.status_code, missing.json()["code"]) == (404, "NOT_FOUND")
    assert client.get("/business/autofundout/batches", headers=auth(client, "merchant", "B1")).status_code == 403
    assert client.get("/business/autofundout/batches", headers=auth(client, "analyst", "a")).status_code == 403


def test_finance_reads_batches_payouts_and_configs_but_changes_nothing(client):
    finance = auth(client, "finance", "f")
    got = client.get("/business-profiles/business/B1/autofundout", headers=finance)
    assert (got.status_code, got.json()["businessId"], got.json()["freqType"]) == (200, "B1", "H")
    assert client.put("/business-profiles/business/B1/autofundout", json={"enabled": False},
                      headers=finance).status_code == 403
    assert client.post("/business-profiles/business/B2/autofundout", json={"freqType": "H"},
                       headers=finance).status_code == 403
    assert client.post("/business-profiles/business/B2/cashout", json={"amount": "1"},
                       headers=finance).status_code == 403
    assert client.get("/business-profiles/business/B2/payouts", headers=finance).json()["payouts"] == []
    assert client.get("/business/autofundout/batches", headers=finance).json() == {"batches": [], "nextCursor": None}


def test_batches_are_listed_newest_slot_first_with_filters_and_a_cursor(client, sim):
    from ops_pipeline.fundout import batch

    start = datetime(2026, 11, 21, 0, tzinfo=UTC)
    batch.run_due(client.ws, "test", now=start)
    batch.run_due(client.ws, "test", now=start + timedelta(hours=4))  # 01:00-03:00 caught up, then 04:00
    ops = auth(client, "finance", "f")
    first = client.get("/business/autofundout/batches", params={"limit": 2}, headers=ops).json()
    assert [b["slot"][11:16] for b in first["batches"]] == ["04:00", "03:00"]
    rest = client.get("/business/autofundout/batches", params={"limit": 2, "cursor": first["nextCursor"]},
                      headers=ops).json()
    assert [b["slot"][11:16] for b in rest["batches"]] == ["02:00", "01:00"]
    last = client.get("/business/autofundout/batches", params={"limit": 2, "cursor": rest["nextCursor"]},
                      headers=ops).json()
    assert ([b["slot"][11:16] for b in last["batches"]], last["nextCursor"]) == (["00:00"], None)
    window = client.get("/business/autofundout/batches", headers=ops,
                        params={"slotFrom": "2026-11-21T01:00:00Z", "slotTo": "2026-11-21T02:00:00+00:00"}).json()
    assert [b["slot"][11:16] for b in window["batches"]] == ["02:00", "01:00"]
    assert all(b["status"] == "done" and b["summary"]["missed"] is False for b in window["batches"])
    paid = [b for b in first["batches"] + rest["batches"] + last["batches"] if b["summary"]["paid"]]
    assert [(b["slot"][11:16], b["summary"]["amounts"]["paid"]) for b in paid] == [("00:00", {"EUR": "100.00"})]
    assert client.get("/business/autofundout/batches", params={"status": "missed"}, headers=ops).json()[
        "batches"] == []


@pytest.mark.parametrize(("path", "field"), [
    ("/business/autofundout/batches/99999999999999999999999999", "batchId"),
    ("/business/autofundout/batches/0", "batchId"),
    ("/business/autofundout/batches/x", "batchId"),
    ("/business/autofundout/batches?cursor=99999999999999999999999999", "cursor"),
    ("/business/autofundout/batches?cursor=%D9%A5", "cursor"),  # an Arabic-Indic 5
    ("/business/autofundout/batches?cursor=12345", "cursor"),  # not a batch: not a cursor
    ("/business/autofundout/batches?limit=100000", "limit"),
    ("/business/autofundout/batches?status=lost", "status"),
    ("/business/autofundout/batches?slotFrom=yesterday", "slotFrom"),
])
def test_bad_batch_ids_and_filters_are_400_naming_the_field(client, path, field):
    r = client.get(path, headers=auth(client, "ops", "alice"))
    assert (r.status_code, r.json()["code"]) == (400, "VALIDATION_ERROR"), r.text
    assert r.json()["error"].startswith(f"{field}:"), r.json()


def test_cashout_by_the_merchant_with_an_idempotency_key(client):
    path = "/business-profiles/business/B2/cashout"
    headers = {**auth(client, "merchant", "B2"), "Idempotency-Key": "co-1"}
    r = client.post(path, json={"amount": "3.00"}, headers=headers)
    assert r.status_code == 201, r.text
    payout = r.json()
    assert (payout["status"], payout["amount"], payout["currency"], payout["kind"]) == ("posted", "3.00", "EUR", "manual")
    assert client.post(path, json={"amount": "3.00"}, headers=headers).json()["payoutId"] == payout["payoutId"]
    too_much = client.post(path, json={"amount": "2.01", "currency": "EUR"}, headers=auth(client, "merchant", "B2"))
    assert (too_much.status_code, too_much.json()["code"]) == (409, "INSUFFICIENT_FUNDS")
    bad = client.post(path, json={"amount": "1.001", "currency": "EUR"}, headers=auth(client, "merchant", "B2"))
    assert bad.status_code == 400 and bad.json()["error"].startswith("amount:")
    number = client.post(path, json={"amount": 0.5, "currency": "EUR"}, headers=auth(client, "merchant", "B2"))
    assert (number.status_code, number.json()["amount"]) == (201, "0.50")  # a JSON number, read exactly
    other = client.post(path, json={"amount": "1"}, headers=auth(client, "merchant", "B1"))
    assert other.status_code == 403
    listed = client.get("/business-profiles/business/B2/payouts", headers=auth(client, "finance", "f")).json()
    assert [p["payoutId"] for p in listed["payouts"]] == [number.json()["payoutId"], payout["payoutId"]]


def test_the_dagster_job_runs_the_slot_with_counts_in_metadata(client, monkeypatch):
    from definitions import defs
    from resources.ops import OpsResource
    from sensors.fundout import fundout_hourly_schedule

    ops = OpsResource(ops_home=str(client.ws.home), database_url=client.ws.settings.database_url)
    monkeypatch.setenv("OPS_BANK_URL", client.ws.settings.bank_url)
    with dg.instance_for_test() as instance:
        when = datetime(2026, 11, 21, 9, tzinfo=UTC)
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=when) as context:
            request = fundout_hourly_schedule(context)
        assert request.run_key == "fundout-2026-11-21T09:00:00+00:00"
        result = defs.resolve_job_def("fundout_batch_job").execute_in_process(
            instance=instance, run_config=request.run_config, resources={"ops": ops}, tags=request.tags)
        assert result.success
        [materialized] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
        metadata = materialized.event_specific_data.metadata
        assert (metadata["paid"].value, metadata["skipped"].value, metadata["failed"].value) == (1, 0, 0)
        assert metadata["amounts_paid"].value == {"EUR": "100.00"}
        assert metadata["slot"].value == "2026-11-21T09:00:00+00:00"


def test_the_notification_sensor_asks_for_a_run_only_while_notifications_wait(sqlite_ws, monkeypatch):
    from sqlalchemy import update

    from ops_pipeline.db.schema import outbox
    from ops_pipeline.notify import Notification, dispatch, enqueue
    from resources.ops import OpsResource
    from sensors.fundout import notifications_sensor

    monkeypatch.delenv("OPS_DATABASE_URL", raising=False)
    monkeypatch.setenv("OPS_WEBHOOK_URL", "http://127.0.0.1:9/hooks")  # nothing listens on port 9
    ops = OpsResource(ops_home=str(sqlite_ws.home))

    def tick(instance):
        with dg.build_sensor_context(instance=instance, resources={"ops": ops}) as context:
            return notifications_sensor(context)

    with dg.instance_for_test() as instance:
        assert tick(instance).skip_message == "no notification waits"
        with sqlite_ws.engine.begin() as conn:
            enqueue(conn, [Notification(event="ops.alert", subject="x")])
        request = tick(instance)
        assert isinstance(request, dg.RunRequest) and request.run_key.startswith("notify-")
        with ops.workspace() as configured:  # the webhook refuses the connection: retried after a backoff
            assert dispatch(configured).counts["retrying"] == 1
        assert tick(instance).skip_message == "no notification waits"  # not due yet
        with sqlite_ws.engine.begin() as conn:
            conn.execute(update(outbox).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
        retry = tick(instance)
        assert isinstance(retry, dg.RunRequest) and retry.run_key != request.run_key


@pytest.mark.parametrize("amount", [
    "1000000000000000000000000000000", 1000000000000000000000000000000, "92233720368547758.08", 1e30, "1e400",
    "\u0661\u0660", "1" * 41, "9" * 4000, -1, True, None, "", "0", [], {"a": 1},
])
def test_cashout_amounts_beyond_64_bits_or_not_decimal_are_400_naming_amount(client, amount):
    r = client.post("/business-profiles/business/B2/cashout", json={"amount": amount, "currency": "EUR"},
                    headers=auth(client, "merchant", "B2"))
    assert (r.status_code, r.json()["code"]) == (400, "VALIDATION_ERROR"), r.text
    assert r.json()["error"].startswith("amount:") and len(r.json()["error"]) < 300, r.json()


def test_cashout_body_errors_name_the_field(client):
    path, who = "/business-profiles/business/B2/cashout", auth(client, "merchant", "B2")
    assert client.post(path, json={"amount": "1", "currncy": "EUR"}, headers=who).json()["error"].startswith("currncy:")
    assert client.post(path, json={"currency": "EUR"}, headers=who).json()["error"] == "amount: is required"
    assert client.post(path, json={"amount": "1", "currency": "EURO"}, headers=who).json()["error"].startswith(
        "currency:")
    assert client.post(path, json={"amount": "1", "currency": "XYZ"}, headers=who).json()["error"].startswith(
        "currency:")
    plain = client.post(path, content=b'{"amount": "1"}', headers={**who, "Content-Type": "text/plain"})
    assert (plain.status_code, plain.json()["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
