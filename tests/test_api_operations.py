"""`POST /api/operations` on SQLite and PostgreSQL: idempotency, conflicts, refused rows, batches, group
commit, the balance read after each answer, and a killed API server under load."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import duckdb
import httpx
import pytest
from fastapi.testclient import TestClient

from ops_pipeline import audit
from ops_pipeline.api.app import create_app
from ops_pipeline.auth import mint_token
from ops_pipeline.lake.tables import BALANCE_OPERATIONS, LEDGER_QUARANTINE
from ops_pipeline.ledger import ingest
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings
from tests.factories import op, write_ops
from tests.servers import CLI, environment, free_port

LOG = BALANCE_OPERATIONS.name


def wire(row: dict, kind: str = "confirmed") -> dict:
    """An operation row of the factories as the API takes it (camelCase)."""
    parts = lambda k: k.split("_")  # noqa: E731
    return {"kind": kind} | {p[0] + "".join(w.title() for w in p[1:]): v
                             for k, v in row.items() for p in [parts(k)]}


def auth(ws, role="internal", sub="falcon") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(ws.settings, role, sub)}"}


@pytest.fixture
def client(ws):
    with TestClient(create_app(ws.settings)) as c:
        yield c


def log_rows(ws, where: str = "TRUE") -> list[tuple]:
    con = duckdb.connect()
    rel = ws.lake.relation(con, LOG)
    return con.sql(f"SELECT falcon_operation_id, source, type, amount_minor FROM {rel} WHERE {where} "
                   "ORDER BY falcon_operation_id, type").fetchall()


def test_post_then_repeat_is_200_with_the_original_result(client, ws):
    r = client.post("/api/operations", json=wire(op("c1", "100.00")), headers=auth(ws))
    assert r.status_code == 200, r.text
    [first] = r.json()["operations"]
    assert first["status"] == "accepted" and first["falconOperationId"] == "c1"
    assert r.json()["lakeVersion"] == ws.lake.latest_version(LOG)
    assert log_rows(ws) == [("c1", "CO", "capture", 10000), ("c1", "CO", "psp_fee", -320)]
    bal = client.get("/api/balances/M1", headers=auth(ws)).json()["balances"][0]
    assert bal["confirmedBalance"] == "96.80"
    with ws.engine.connect() as conn:
        [trail] = audit.history(conn, "ledger_operations", first["ingestId"])
    assert (trail["actor"], trail["action"], trail["after"]["accepted"]) == ("falcon", "post", 1)

    again = client.post("/api/operations", json=wire(op("c1", "100.00")), headers=auth(ws, "partner"))
    assert again.status_code == 200
    [dup] = again.json()["operations"]
    assert (dup["status"], dup["ingestId"]) == ("duplicate", first["ingestId"])
    assert len(log_rows(ws)) == 2
    # a file with the same operation later is a duplicate too: one code path
    co = write_ops(ws.settings.home / "co.csv", [op("c1", "100.00")])
    assert ingest.ingest_file(ws, co, "confirmed").duplicates == 1


def test_conflicting_repeat_is_409_naming_the_fields(client, ws):
    client.post("/api/operations", json=wire(op("c1", "100.00")), headers=auth(ws))
    r = client.post("/api/operations", json=wire(op("c1", "120.00", ref="other")), headers=auth(ws))
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "CONFLICT"
    [row] = body["operations"]
    assert row["status"] == "conflict" and row["reasonCode"] == "conflicting_duplicate"
    assert "amount 100.00 vs 120.00" in row["reason"] and "external_reference 'ref-c1' vs 'other'" in row["reason"]
    assert "amount 100.00 vs 120.00" in body["error"]
    assert len(log_rows(ws)) == 2


def test_bad_rows_are_400_with_quarantine_reasons_and_quarantined(client, ws):
    batch = {"operations": [wire(op("ok1", "5.00")), wire(op("bad1", "-1.00")),
                            wire(op("bad2", "1.00", currency="XXX")), {"kind": "confirmed", "type": "capture"}]}
    r = client.post("/api/operations", json=batch, headers=auth(ws))
    assert r.status_code == 400
    rows = r.json()["operations"]
    assert [(o["falconOperationId"], o["status"], o["reasonCode"]) for o in rows] == [
        ("ok1", "accepted", None), ("bad1", "rejected", "non_positive_amount"),
        ("bad2", "rejected", "unknown_currency"), (None, "rejected", "missing_value")]
    assert rows[1]["reason"] == "amount: '-1.00' must be positive"
    con = duckdb.connect()
    q = con.sql(f"SELECT falcon_operation_id, reason_code, reason, file_name FROM "
                f"{ws.lake.relation(con, LEDGER_QUARANTINE.name)} ORDER BY row_number").fetchall()
    assert [(x[0], x[1], x[3]) for x in q] == [("bad1", "non_positive_amount", "api"),
                                               ("bad2", "unknown_currency", "api"),
                                               (None, "missing_value", "api")]
    assert q[0][2] == rows[1]["reason"]
    assert [x[0] for x in log_rows(ws)] == ["ok1", "ok1"]  # the valid row is in, as from a file
    # the same request again: ok1 a duplicate, the bad rows not quarantined twice
    assert client.post("/api/operations", json=batch, headers=auth(ws)).status_code == 400
    assert con.sql(f"SELECT count(*) FROM {ws.lake.relation(con, LEDGER_QUARANTINE.name)}").fetchall() == [(3,)]


def test_roles_and_shape(client, ws):
    r = client.post("/api/operations", json=wire(op("c1", "1.00")), headers=auth(ws, "ops"))
    assert r.status_code == 403
    r = client.post("/api/operations", json=wire(op("c1", "1.00"), kind="pending"), headers=auth(ws))
    assert r.status_code in (400, 422) and "kind" in r.json()["error"]
    r = client.post("/api/operations", json={"operations": []}, headers=auth(ws))
    assert r.status_code in (400, 422)


def test_batch_of_10000_in_one_commit(client, ws):
    before = ws.lake.latest_version(LOG)
    batch = {"operations": [wire(op(f"b{i}", "1.00", type="refund" if i % 10 == 0 else "capture"))
                            for i in range(10_000)]}
    r = client.post("/api/operations", json=batch, headers=auth(ws))
    assert r.status_code == 200, r.text[:300]
    assert {o["status"] for o in r.json()["operations"]} == {"accepted"}
    # raw rows, then the log: one log commit (the raw table's commit comes first)
    assert ws.lake.latest_version(LOG) == before + 1 == r.json()["lakeVersion"]
    con = duckdb.connect()
    assert con.sql(f"SELECT count(DISTINCT falcon_operation_id), sum(amount_minor) FILTER (WHERE type <> 'psp_fee')"
                   f" FROM {ws.lake.relation(con, LOG)}").fetchall() == [(10_000, 9_000 * 100 - 1_000 * 100)]
    bal = client.get("/api/balances/M1", headers=auth(ws)).json()["balances"][0]
    # 9,000 captures of 1.00 less fee 0.03 + 0.30 each, 1,000 refunds of 1.00
    assert bal["confirmedBalance"] == f"{(9_000 * 67 - 1_000 * 100) / 100:.2f}"


def test_concurrent_posters_share_commits_and_each_answer_is_in_the_balance(client, ws):
    before = ws.lake.latest_version(LOG)
    n = 120
    problems: list[str] = []
    headers = auth(ws)  # minted once: the first token creates the secret

    def one(i: int) -> None:
        r = client.post("/api/operations", json=wire(op(f"p{i}", "2.00", merchant="M2" if i % 2 else "M1")),
                        headers=headers)
        if r.status_code != 200:
            problems.append(r.text)
            return
        version = r.json()["lakeVersion"]
        merchant = "M2" if i % 2 else "M1"
        got = client.get(f"/api/balances/{merchant}", headers=headers).json()
        if got["lakeVersion"] < version:
            problems.append(f"p{i}: read at version {got['lakeVersion']} before its commit {version}")
        con = duckdb.connect()
        if not con.sql(f"SELECT count(*) FROM {ws.lake.relation(con, LOG, got['lakeVersion'])} "
                       f"WHERE falcon_operation_id = 'p{i}'").fetchall()[0][0]:
            problems.append(f"p{i}: not in the version the balance read reports")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(n)))
    assert problems == []
    assert len({r[0] for r in log_rows(ws)}) == n
    commits = ws.lake.latest_version(LOG) - before
    assert commits < n / 2, f"{commits} log commits for {n} requests"


# -- the real server, killed under load ---------------------------------------------------------------

def serve(env: dict, port: int, workers: int = 1) -> subprocess.Popen:
    proc = subprocess.Popen([CLI, "api", "--port", str(port), "--workers", str(workers)], env=env,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"ops-pipeline api exited with {proc.returncode}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "ops-pipeline api did not start"
        time.sleep(0.1)


@pytest.mark.slow
def test_kill_9_under_load_loses_no_acknowledged_operation_and_duplicates_none(ws, tmp_path):
    port = free_port()
    env = environment(ws, OPS_INTAKE_COMMIT_MS="20")
    proc = serve(env, port)
    url = f"http://127.0.0.1:{port}/api/operations"
    headers = auth(ws)
    acked: set[str] = set()
    stop = threading.Event()

    def poster(w: int) -> None:
        with httpx.Client(timeout=30) as c:
            for i in range(100_000):
                if stop.is_set():
                    return
                key = f"k{w}-{i}"
                try:
                    r = c.post(url, json=wire(op(key, "1.00")), headers=headers)
                except httpx.TransportError:
                    return
                if r.status_code == 200:
                    acked.add(key)

    threads = [threading.Thread(target=poster, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 300
    fresh = Workspace(make_settings(ws.settings.home, ws.settings.database_url))
    counts = _capture_counts(fresh)
    assert acked <= set(counts), f"{len(acked - set(counts))} acknowledged operations lost"
    assert set(counts.values()) == {1}
    # a restarted server takes the retries of everything: the acknowledged ones come back as duplicates
    proc = serve(env, port)
    try:
        sample = sorted(acked)[:50]
        r = httpx.post(url, json={"operations": [wire(op(k, "1.00")) for k in sample]}, headers=headers,
                       timeout=30)
        assert r.status_code == 200 and {o["status"] for o in r.json()["operations"]} == {"duplicate"}
        bal = httpx.get(f"http://127.0.0.1:{port}/api/balances/M1", headers=headers).json()["balances"][0]
        assert bal["confirmedBalance"] == f"{len(counts) * 67 / 100:.2f}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        fresh.close()


@pytest.mark.slow
def test_two_api_processes_each_committing_take_every_operation_once(ws):
    """`api --workers 2`: two committers (one per process) serialized by the ledger lock. Every operation is
    posted twice, from two threads, so repeats land on either process, often in flight at once: each is
    in the log once, every answer is accepted or duplicate with the same ingest id, and the balance has
    each once."""
    port = free_port()
    proc = serve(environment(ws), port, workers=2)
    url, headers, n = f"http://127.0.0.1:{port}/api/operations", auth(ws), 120
    answers: dict[str, list[tuple[str, str]]] = {f"w{i}": [] for i in range(n)}

    def poster(order: list[int]) -> None:
        with httpx.Client(timeout=30) as c:  # a connection of its own: either process may take it
            for i in order:
                r = c.post(url, json=wire(op(f"w{i}", "1.00")), headers=headers)
                assert r.status_code == 200, r.text
                [o] = r.json()["operations"]
                answers[f"w{i}"].append((o["status"], o["ingestId"]))

    try:
        time.sleep(2)  # both workers up
        threads = [threading.Thread(target=poster, args=(order,)) for order in (
            list(range(0, n, 2)), list(range(1, n, 2)), list(range(n - 2, -1, -2)), list(range(n - 1, 0, -2)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        bal = httpx.get(f"http://127.0.0.1:{port}/api/balances/M1", headers=headers).json()["balances"][0]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert _capture_counts(ws) == {f"w{i}": 1 for i in range(n)}
    for key, got in answers.items():
        assert sorted(s for s, _ in got) == ["accepted", "duplicate"], key
        assert len({ingest_id for _, ingest_id in got}) == 1, key
    assert bal["confirmedBalance"] == f"{n * 67 / 100:.2f}"  # 1.00 less the fee, each once


def _capture_counts(ws) -> dict[str, int]:
    con = duckdb.connect()
    rel = ws.lake.relation(con, LOG)
    return dict(con.sql(f"SELECT falcon_operation_id, count(*) FROM {rel} WHERE type = 'capture' GROUP BY 1")
                .fetchall())
