"""`GET /api/balances/{merchant_id}` on SQLite and PostgreSQL: values, exactness past the cache, errors,
and the real `ops-pipeline api` server under concurrent reads and writes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import select

from ops_pipeline.api.app import create_app
from ops_pipeline.auth import mint_token
from ops_pipeline.db.engine import MIGRATIONS
from ops_pipeline.db.schema import balance_cache
from ops_pipeline.lake.tables import BALANCE_OPERATIONS
from ops_pipeline.ledger import balances, holds, ingest
from ops_pipeline.ledger.compaction import compact
from ops_pipeline.ledger.entries import Entry, post_entries
from tests.factories import op, write_ops

CLI = str(Path(sys.executable).with_name("ops-pipeline"))


@pytest.fixture
def funded(ws, tmp_path):
    """M1 (EUR, fee 2.9% + 0.30): 100.00 captured and reconciled, 10.50 refunded, not yet reconciled.
    M2 (JPY, 3.5%): 1200 captured. M3 (BHD, 1.25% + 0.005): 10.000 captured."""
    co = write_ops(tmp_path / "co.csv", [
        op("c1", "100.00"), op("r1", "10.50", type="refund"), op("c2", "1200", merchant="M2"),
        op("c3", "10.000", merchant="M3"),
    ])
    ingest.ingest_file(ws, co, "confirmed")
    ingest.ingest_file(ws, write_ops(tmp_path / "ro.csv", [op("c1", "100.00")]), "reconciled")
    return ws


@pytest.fixture
def client(funded):
    with TestClient(create_app(funded.settings)) as c:
        yield c


def auth(ws, role="ops", sub="alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(ws.settings, role, sub)}"}


def figures(response) -> list[dict]:
    assert response.status_code == 200, response.text
    return [{k: v for k, v in b.items() if k != "asOf"} for b in response.json()["balances"]]


def append_behind_cache(ws, merchant_id: str, currency: str, amount_minor: int, source: str = "ADJUSTMENT",
                        kind: str = "adjustment") -> int:
    """Append an entry (an ADJUSTMENT unless told) straight to the log, as a writer that crashed before
    updating the cache would."""
    now = datetime.now(UTC)
    key = uuid.uuid4().hex
    row = {"uuid": key, "external_reference": None, "amount_minor": amount_minor, "currency": currency,
           "type": kind, "falcon_operation_id": key, "source": source, "operation_date": now,
           "recorded_at": now, "local_merchant_id": None, "shop_id": None, "balance_shop_id": None,
           "psp_id": None, "merchant_id": merchant_id, "op_key": int(key[:15], 16), "ingest_id": "test"}
    return ws.lake.append(BALANCE_OPERATIONS.name, pa.Table.from_pylist([row], BALANCE_OPERATIONS.schema))


def test_balances_in_major_units_per_currency_exponent(client, funded):
    r = client.get("/api/balances/M1", headers=auth(funded))
    assert r.status_code == 200
    body = r.json()
    assert body["merchantId"] == "M1"
    assert body["lakeVersion"] == funded.lake.latest_version(BALANCE_OPERATIONS.name)
    [eur] = body["balances"]
    as_of = datetime.fromisoformat(eur.pop("asOf"))
    assert abs((datetime.now(UTC) - as_of).total_seconds()) < 60
    # confirmed: 100.00 - fee (2.90 + 0.30) - 10.50; settled: only the reconciled capture and its fee
    assert eur == {"currency": "EUR", "confirmedBalance": "86.30", "settledBalance": "96.80", "held": "0.00",
                   "available": "96.80", "reserved": "0.00"}
    jpy = client.get("/api/balances/M2", headers=auth(funded)).json()["balances"][0]
    assert (jpy["currency"], jpy["confirmedBalance"], jpy["settledBalance"]) == ("JPY", "1158", "0")
    bhd = client.get("/api/balances/M3", headers=auth(funded)).json()["balances"][0]
    assert (bhd["currency"], bhd["confirmedBalance"], bhd["held"]) == ("BHD", "9.870", "0.000")


def test_exact_with_entries_committed_after_the_cache(client, funded):
    ws = funded
    cached = balances.cached_version(ws)
    version = append_behind_cache(ws, "M1", "EUR", 555)
    append_behind_cache(ws, "M2", "JPY", 7)  # another merchant's entry in the same window
    assert balances.cached_version(ws) == cached < version  # the cache has not seen them
    body = client.get("/api/balances/M1", headers=auth(ws)).json()
    assert body["lakeVersion"] == version + 1
    assert body["balances"][0]["confirmedBalance"] == "91.85"  # 86.30 + 5.55
    assert body["balances"][0]["settledBalance"] == "102.35"  # 96.80 + 5.55
    assert balances.cached_version(ws) == cached  # a read never writes the cache

    post_entries(ws, [Entry("PAYOUT", "p1", "M1", "EUR", -2000, "payout")], "test")  # through the cache
    holds.place_hold(ws, "M1", "EUR", 1000, actor="test", hold_id="h1")
    expected = {"currency": "EUR", "confirmedBalance": "71.85", "settledBalance": "82.35", "held": "10.00",
                "available": "72.35", "reserved": "0.00"}
    assert figures(client.get("/api/balances/M1", headers=auth(ws))) == [expected]
    balances.refresh_cache(ws)
    assert balances.cached_version(ws) > cached
    assert figures(client.get("/api/balances/M1", headers=auth(ws))) == [expected]


def test_a_hold_counts_until_its_expiry_on_the_api_read(client, funded):
    """The API's own read (asyncpg or sqlite3, not SQLAlchemy) compares expiries with `now` as the engine
    stores them: a hold past its expiry, not yet swept, no longer counts; one due a second later does."""
    ws = funded
    holds.place_hold(ws, "M1", "EUR", 700, actor="test", hold_id="soon",
                     expires_at=datetime.now(UTC) + timedelta(seconds=1.5))
    holds.place_hold(ws, "M1", "EUR", 300, actor="test", hold_id="later",
                     expires_at=datetime.now(UTC) + timedelta(hours=1))
    [eur] = client.get("/api/balances/M1", headers=auth(ws)).json()["balances"]
    assert (eur["held"], eur["available"]) == ("10.00", "86.80")
    time.sleep(1.6)
    [eur] = client.get("/api/balances/M1", headers=auth(ws)).json()["balances"]
    assert (eur["held"], eur["available"]) == ("3.00", "93.80")
    assert [b.held_minor for b in balances.get_balances(ws, "M1")] == [300]  # the engine's read agrees


def eur_figures(client, ws) -> tuple[str, str, str, str]:
    [eur] = client.get("/api/balances/M1", headers=auth(ws)).json()["balances"]
    return eur["confirmedBalance"], eur["settledBalance"], eur["available"], eur["reserved"]


@pytest.fixture
def reserving(funded, tmp_path):
    """`funded`, and M1 puts 30.00 EUR in reserve and releases 12.50 of it, confirmed and reconciled."""
    moves = write_ops(tmp_path / "reserve.csv", [op("rs1", "30.00", type="reserve"),
                                                 op("rr1", "12.50", type="reserve_release", ref="rs1")])
    ingest.ingest_file(funded, moves, "confirmed")
    ingest.ingest_file(funded, moves, "reconciled")
    return funded


def test_reserved_after_a_reserve_and_a_partial_release(client, reserving):
    """17.50 in reserve, out of settled and available (a reserve counts once though its CO and RO both carry
    it); the same past the cache, after a refresh, as of now and in a replay. PostgreSQL: the native path."""
    ws = reserving
    # confirmed 86.30 - 30.00 + 12.50; settled 96.80 - 17.50
    assert eur_figures(client, ws) == ("68.80", "79.30", "79.30", "17.50")
    cached = balances.cached_version(ws)
    append_behind_cache(ws, "M1", "EUR", 250, source="RO", kind="reserve_release")  # 2.50 more released
    assert balances.cached_version(ws) == cached
    after = ("68.80", "81.80", "81.80", "15.00")
    assert eur_figures(client, ws) == after
    balances.refresh_cache(ws)
    assert balances.cached_version(ws) > cached
    assert eur_figures(client, ws) == after
    rebuilt = balances.rebuild(ws)
    assert rebuilt.differences == []
    assert balances.replay(ws, rebuilt.version).filter(merchant_id="M1")["reserved_minor"].to_list() == [1500]
    [now] = balances.balances_as_of(ws, "M1", datetime.now(UTC))
    assert (now.settled_minor, now.reserved_minor) == (8180, 1500)


def test_a_reserve_only_confirmed_is_not_reserved_yet(client, funded, tmp_path):
    """The reserved figure is the settled side's, as available is: a CO reserve moves confirmed only."""
    ingest.ingest_file(funded, write_ops(tmp_path / "rs.csv", [op("rs1", "30.00", type="reserve")]), "confirmed")
    assert eur_figures(client, funded) == ("56.30", "96.80", "96.80", "0.00")


def test_migration_0016_folds_the_reserves_of_a_vacuumed_log_into_the_emptied_cache(client, reserving):
    ws = reserving
    before = eur_figures(client, ws)
    compact(ws, actor="test", retention_hours=0)  # the first commits' files are gone: no change feed from 0
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with ws.engine.begin() as conn:  # the cache as it was before 0016
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0015")
        command.upgrade(cfg, "0016")  # empties the cache: until init refolds it, reads fold the whole log
    assert balances.cached_version(ws) == -1
    assert eur_figures(client, ws) == before
    ws.init()  # init folds the whole log again
    with ws.engine.connect() as conn:
        cached = conn.execute(select(balance_cache.c.reserved_minor, balance_cache.c.settled_minor)
                              .where(balance_cache.c.merchant_id == "M1")).one()
    assert tuple(cached) == (1750, 7930)
    assert balances.cached_version(ws) == ws.lake.latest_version(BALANCE_OPERATIONS.name)
    assert eur_figures(client, ws) == before == ("68.80", "79.30", "79.30", "17.50")
    assert balances.rebuild(ws).differences == []


def test_new_merchant_seen_only_in_entries_after_the_cache(client, funded):
    append_behind_cache(funded, "M9", "USD", 1234)
    [usd] = client.get("/api/balances/M9", headers=auth(funded)).json()["balances"]
    assert (usd["currency"], usd["confirmedBalance"], usd["available"]) == ("USD", "12.34", "12.34")


def test_currency_filter_and_not_found(client, funded):
    post_entries(funded, [Entry("ADJUSTMENT", "a1", "M1", "USD", 99, "adjustment")], "test")
    both = client.get("/api/balances/M1", headers=auth(funded)).json()["balances"]
    assert [b["currency"] for b in both] == ["EUR", "USD"]
    only = client.get("/api/balances/M1", params={"currency": "USD"}, headers=auth(funded)).json()
    assert [(b["currency"], b["confirmedBalance"]) for b in only["balances"]] == [("USD", "0.99")]

    r = client.get("/api/balances/M1", params={"currency": "GBP"}, headers=auth(funded))
    assert (r.status_code, r.json()["code"], r.json()["error"]) == (
        404, "NOT_FOUND", "merchant_id: 'M1' has no GBP balance")
    r = client.get("/api/balances/nobody", headers=auth(funded))
    assert (r.status_code, r.json()["error"]) == (404, "merchant_id: 'nobody' has no balances")
    assert r.json()["correlationId"] == r.headers["X-Correlation-Id"]


def test_validation_errors_are_400_naming_the_field(client, funded):
    r = client.get("/api/balances/M1", params={"currency": "EURO"}, headers=auth(funded))
    assert r.status_code == 400
    assert r.json() | {"correlationId": None} == {
        "error": "currency: 'EURO' is not an ISO 4217 currency", "code": "VALIDATION_ERROR", "correlationId": None}
    r = client.get("/api/balances/" + "x" * 65, headers=auth(funded))
    assert (r.status_code, r.json()["code"]) == (400, "VALIDATION_ERROR")
    assert r.json()["error"].startswith("merchant_id: ")


@pytest.mark.parametrize("role", ["ops", "finance", "internal"])
def test_staff_roles_read_any_merchant(client, funded, role):
    assert client.get("/api/balances/M2", headers=auth(funded, role)).status_code == 200


def test_merchant_reads_only_itself(client, funded):
    own = client.get("/api/balances/M1", headers=auth(funded, "merchant", "M1"))
    assert (own.status_code, own.json()["merchantId"]) == (200, "M1")
    other = client.get("/api/balances/M2", headers=auth(funded, "merchant", "M1"))
    assert (other.status_code, other.json()["code"]) == (403, "FORBIDDEN")
    assert other.json()["error"] == "merchant_id: a merchant token reaches only its own business"
    assert "balances" not in other.json()


@pytest.mark.parametrize("role", ["analyst", "partner"])
def test_other_roles_are_forbidden(client, funded, role):
    r = client.get("/api/balances/M1", headers=auth(funded, role))
    assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")
    assert r.json()["error"].startswith(f"role: '{role}' may not do this")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(funded):
    """The real `ops-pipeline api` (uvicorn, create_app factory, settings from the environment)."""
    port = free_port()
    env = {**os.environ, "OPS_HOME": str(funded.settings.home), "OPS_DATABASE_URL": funded.settings.database_url}
    proc = subprocess.Popen([CLI, "api", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"ops-pipeline api exited with {proc.returncode}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "ops-pipeline api did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after shutdown


def test_real_server_exact_under_concurrent_writes(server, funded):
    """Readers on 4 threads while payouts are committed: every answer matches the log version it reports."""
    ws = funded
    base_version = ws.lake.latest_version(BALANCE_OPERATIONS.name)
    headers = auth(ws, "merchant", "M1") | {"X-Correlation-Id": "req-42"}
    seen: list[tuple[int, str]] = []
    problems: list[str] = []
    done = threading.Event()

    def read() -> None:
        with httpx.Client(base_url=server, headers=headers, timeout=10) as http:
            while not done.is_set():
                r = http.get("/api/balances/M1")
                if r.status_code != 200 or r.headers["X-Correlation-Id"] != "req-42":
                    problems.append(f"{r.status_code} {r.headers} {r.text}")
                    return
                body = r.json()
                seen.append((body["lakeVersion"], body["balances"][0]["confirmedBalance"]))

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    deadline = time.monotonic() + 30
    while not seen and not problems and time.monotonic() < deadline:  # the base version is read first
        time.sleep(0.01)
    for i in range(6):  # one commit each, 1.00 EUR out
        post_entries(ws, [Entry("PAYOUT", f"p{i}", "M1", "EUR", -100, "payout")], "test")
    time.sleep(0.2)
    done.set()
    for t in readers:
        t.join()
    assert not problems
    versions = {v for v, _ in seen}
    assert {base_version, base_version + 6} <= versions
    for version, confirmed in seen:  # 86.30 minus 1.00 per payout commit
        assert Decimal(confirmed) == Decimal("86.30") - (version - base_version)
    health = httpx.get(f"{server}/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert len(health.headers["X-Correlation-Id"]) > 8
