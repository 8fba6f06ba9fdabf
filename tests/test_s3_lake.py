"""The lake on S3-compatible object storage: a moto server on 127.0.0.1, real Delta commits over HTTP."""

from __future__ import annotations

import gc
import os
import subprocess
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from ops_pipeline import analytics
from ops_pipeline.errors import NotFound
from ops_pipeline.ledger import balances, ingest, merchants
from ops_pipeline.settings import Settings
from ops_pipeline.workspace import Workspace
from tests.factories import op, write_merchants, write_ops
from tests.s3server import s3_server

CLI = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "ops-pipeline"
LOG = "balance_operations"
OPS = [
    op("c1", "10.00"),                       # M1 EUR: +1000, fee 2.9% + 0.30 = -59
    op("r1", "2.50", type="refund"),          # M1 EUR: -250
    op("c2", "1000", merchant="M2"),          # M2 JPY: +1000, fee 3.5% = -35
    op("c3", "1.234", merchant="M3"),         # M3 BHD: +1234, fee 1.25% + 0.005 = -20
    op("c4", "7.00", merchant="M4"),          # M4 EUR: +700, no fee
    op("x1", "0"),                            # quarantined: not positive
    op("x2", "1.001"),                        # quarantined: too many decimals for EUR
]
CONFIRMED = {("M1", "EUR"): 691, ("M2", "JPY"): 965, ("M3", "BHD"): 1214, ("M4", "EUR"): 700}


@pytest.fixture(scope="session")
def s3():
    with s3_server() as server:
        yield server


@pytest.fixture
def bucket(s3):
    return s3.new_bucket()


@pytest.fixture
def s3_ws(s3, bucket, tmp_path):
    """A workspace whose lake is `s3://<fresh bucket>/lake`, with the sample merchant context loaded."""
    ws = Workspace(Settings.from_env({"OPS_HOME": str(tmp_path / "home"), **s3.env(bucket)}))
    ws.init()
    merchants.load(ws, write_merchants(tmp_path / "merchants.csv"))
    yield ws
    ws.close()


def live_delta_tables() -> int:
    gc.collect()
    return sum(isinstance(o, DeltaTable) for o in gc.get_objects())


def test_settings_read_s3_options_ours_first_then_aws_names():
    s = Settings.from_env({
        "OPS_HOME": "/tmp/h", "OPS_LAKE_URI": "s3://b/p/", "OPS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ENDPOINT_URL": "http://elsewhere:1", "AWS_ACCESS_KEY_ID": "aws-key",
        "OPS_S3_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "eu-west-3",
    })
    assert s.lake_uri == "s3://b/p"
    assert dict(s.lake_storage_options) == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ACCESS_KEY_ID": "aws-key",
        "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "eu-west-3", "AWS_ALLOW_HTTP": "true",
        "conditional_put": "etag",
    }
    plain = Settings.from_env({"OPS_LAKE_URI": "s3://b/p", "OPS_S3_ALLOW_HTTP": "false",
                               "OPS_S3_ENDPOINT_URL": "http://127.0.0.1:9000"}).lake_storage_options
    assert plain["AWS_ALLOW_HTTP"] == "false" and plain["AWS_REGION"] == "us-east-1"
    assert Settings.from_env({"OPS_HOME": "/tmp/h"}).lake_storage_options == {}


def test_ingest_balances_replay_and_views_on_s3(s3, bucket, s3_ws, tmp_path):
    keys = s3.keys(bucket)
    assert "lake/ledger/balance_operations/_delta_log/00000000000000000000.json" in keys
    assert not (s3_ws.home / "lake").exists()

    path = write_ops(tmp_path / "ops.csv", OPS)
    first = ingest.ingest_file(s3_ws, path, "confirmed")
    assert (first.ingested, first.entries, first.duplicates, first.quarantined) == (5, 8, 0, 2)
    got = {(b.merchant_id, b.currency): b.confirmed_minor for m in ("M1", "M2", "M3", "M4")
           for b in balances.get_balances(s3_ws, m)}
    assert got == CONFIRMED

    again = ingest.ingest_file(s3_ws, path, "confirmed")
    assert (again.ingested, again.entries, again.duplicates, again.newly_quarantined) == (0, 0, 5, 0)
    assert again.lake_version == first.lake_version
    settled = ingest.ingest_file(s3_ws, write_ops(tmp_path / "ro.jsonl", OPS[:1]), "reconciled")
    assert (settled.ingested, settled.entries) == (1, 2)
    [m1] = balances.get_balances(s3_ws, "M1")
    assert (m1.confirmed_minor, m1.settled_minor, m1.available_minor) == (691, 941, 941)

    rebuilt = balances.rebuild(s3_ws)
    assert (rebuilt.differences, rebuilt.entries, rebuilt.balances) == ([], 10, 4)
    [then] = balances.balances_as_of(s3_ws, "M1", datetime(2026, 11, 2, tzinfo=UTC))
    assert (then.confirmed_minor, then.settled_minor) == (691, 941)
    with pytest.raises(NotFound):
        balances.balances_as_of(s3_ws, "M1", datetime(2026, 10, 31, tzinfo=UTC))  # before its first operation

    con = analytics.connect(s3_ws)
    rows = con.sql("""SELECT merchant_id, currency, source, sum(amount), count(*) FROM balance_operations
                      GROUP BY ALL ORDER BY ALL""").fetchall()
    assert rows == [
        ("M1", "EUR", "CO", Decimal("6.91"), 3), ("M1", "EUR", "RO", Decimal("9.41"), 2),
        ("M2", "JPY", "CO", Decimal("965"), 2), ("M3", "BHD", "CO", Decimal("1.214"), 2),
        ("M4", "EUR", "CO", Decimal("7.00"), 1),
    ]
    quarantine = con.sql("SELECT falcon_operation_id, reason_code FROM ledger_quarantine ORDER BY 1")
    assert quarantine.fetchall() == [("x1", "non_positive_amount"), ("x2", "too_many_decimals")]
    assert con.sql("SELECT count(*) FROM confirmed_operations").fetchall() == [(7,)]


def test_concurrent_commits_on_s3_all_land(s3_ws):
    """Put-if-absent commits (`conditional_put=etag`): a writer that lost a race is rebased, not lost."""
    writers, commits = 4, 3
    start = s3_ws.lake.latest_version(LOG)
    barrier, errors, versions = threading.Barrier(writers), [], {f"W{w}": [] for w in range(writers)}

    def write(merchant: str) -> None:
        ws = Workspace(s3_ws.settings)  # its own lake and handles, like another process
        try:
            barrier.wait()
            for _ in range(commits):
                versions[merchant].append(ws.lake.append(LOG, entries(merchant, 10)))
        except Exception as exc:
            errors.append(exc)
        finally:
            ws.close()

    threads = [threading.Thread(target=write, args=(m,)) for m in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    all_versions = sorted(v for vs in versions.values() for v in vs)
    assert all_versions == list(range(start + 1, start + 1 + writers * commits))  # none lost, none shared
    table = DeltaTable(s3_ws.lake.table_uri(LOG), storage_options=s3_ws.lake.storage_options)
    feed = pl.from_arrow(pa.table(table.load_cdf(starting_version=start + 1).read_all()))
    landed = feed.group_by("merchant_id").agg(pl.len(), pl.col("_commit_version").unique().sort())
    assert {m: (n, list(vs)) for m, n, vs in landed.iter_rows()} == {
        m: (10 * commits, vs) for m, vs in versions.items()  # the versions returned are the writer's commits
    }
    retries = [h["operationMetrics"].get("num_retries", 0) for h in table.history(writers * commits)]
    assert sum(retries) > 0  # the writers really raced


def test_latest_version_and_change_feed_on_s3_reuse_one_handle(s3_ws):
    lake, other = s3_ws.lake, Workspace(s3_ws.settings).lake  # `other` commits like another process
    baseline = live_delta_tables()
    start = lake.latest_version(LOG)
    handle = lake._handles[LOG]
    by_version = {}
    for i in range(3):
        by_version[other.append(LOG, entries(f"M{i}", 1))] = f"M{i}"
        assert lake.latest_version(LOG) == start + i + 1
    assert sorted(by_version) == [start + 1, start + 2, start + 3]
    for _ in range(50):
        assert lake.latest_version(LOG) == start + 3
    assert lake._handles[LOG] is handle and live_delta_tables() == baseline + 1

    feed = lake.changes(LOG, start, start + 3, ["merchant_id", "amount_minor"])
    assert sorted(zip(feed["merchant_id"].to_pylist(), feed["amount_minor"].to_pylist(), strict=True)) == [
        ("M0", 5), ("M1", 5), ("M2", 5)]
    assert lake.changes(LOG, start + 1, start + 2, ["merchant_id"])["merchant_id"].to_pylist() == [
        by_version[start + 2]
    ]
    assert lake.changes(LOG, start + 3, start + 3, ["merchant_id"]).num_rows == 0

    del handle
    other.close()
    s3_ws.close()
    assert lake._handles == {} and live_delta_tables() == baseline


def entries(merchant: str, n: int) -> pa.Table:
    """`n` adjustment entries of 5 minor units for `merchant`."""
    ts = pa.array([0] * n, pa.timestamp("us", "UTC"))
    ids = [f"adj-{merchant}-{uuid.uuid4().hex}" for _ in range(n)]
    return pa.table({
        "uuid": ids, "external_reference": [None] * n, "amount_minor": [5] * n, "currency": ["EUR"] * n,
        "type": ["adjustment"] * n, "falcon_operation_id": ids, "source": ["ADJUSTMENT"] * n,
        "operation_date": ts, "recorded_at": ts, **{c: [None] * n for c in ("local_merchant_id", "shop_id",
                                                                             "balance_shop_id", "psp_id")},
        "merchant_id": [merchant] * n, "op_key": range(n), "ingest_id": ["test"] * n,
    })


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=120)


def test_cli_on_s3_exit_codes(s3, bucket, tmp_path):
    """Exit codes are the CLI's own, never an abort at interpreter exit (134) or a crash (139)."""
    env = {**os.environ, "OPS_HOME": str(tmp_path / "home"), **s3.env(bucket)}
    env.pop("OPS_DATABASE_URL", None)
    assert run_cli(env, "init").returncode == 0
    loaded = run_cli(env, "merchants", "load", str(write_merchants(tmp_path / "m.csv")))
    assert (loaded.returncode, loaded.stdout) == (0, "merchant context: 4 rows loaded (0 replaced), 4 in force\n")
    ops_file = str(write_ops(tmp_path / "ops.parquet", OPS))
    ingested = run_cli(env, "ledger", "ingest", ops_file, "--kind", "confirmed")
    assert ingested.returncode == 0, ingested.stderr
    assert ingested.stdout == "ops.parquet: 7 rows, 5 ingested (8 entries), 0 duplicate, 2 quarantined (2 new)\n"

    balance = run_cli(env, "ledger", "balance", "M1", "--format", "csv")
    assert balance.returncode == 0, balance.stderr
    assert balance.stdout.splitlines()[1].startswith("M1,EUR,6.91,0.00,0.00,0.00,")
    unknown = run_cli(env, "ledger", "balance", "UNKNOWN")
    assert (unknown.returncode, unknown.stderr) == (1, "error: merchant_id: 'UNKNOWN' has no balances\n")
    rebuilt = run_cli(env, "ledger", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout.startswith("replayed 8 entries into 4 balances at log version 1 in ")
    assert rebuilt.stdout.endswith("s\ncache matches the log\n")

    # Scans that DuckDB stops early (LIMIT, an error) over a table of several files on object storage:
    # through the Delta reader's own filesystem, these crashed the process at exit (134 or 139).
    ws = Workspace(Settings.from_env(env))
    for i in range(4):
        more = write_ops(tmp_path / f"more{i}.csv", [op(f"m{i}", "1.00", merchant="M4")])
        ingest.ingest_file(ws, more, "confirmed")
    ws.close()
    first = run_cli(env, "sql", "SELECT count(*) AS n FROM (SELECT * FROM confirmed_operations LIMIT 1)")
    assert (first.returncode, first.stdout, first.stderr) == (0, "n\n1\n", "")
    bad = run_cli(env, "sql", "SELECT CAST(falcon_operation_id AS INTEGER) FROM confirmed_operations")
    assert bad.returncode == 1 and bad.stderr.startswith("error: query: Conversion Error"), bad.stderr
