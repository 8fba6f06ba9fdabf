"""Operation types beyond capture and refund (ledger/split.py): each split in exact minor units, its effect on
confirmed, settled, held and available, reserves given back when due, replay, quarantine reasons, merchant
context fields, turnover and the report by type; on SQLite and PostgreSQL."""

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from fastapi.testclient import TestClient

import definitions
from ops_pipeline import analytics
from ops_pipeline.api.app import create_app
from ops_pipeline.errors import InvalidInput
from ops_pipeline.lake.tables import MERCHANT_CONTEXT
from ops_pipeline.ledger import OPERATION_TYPES, balances, holds, ingest, merchants, reserves
from ops_pipeline.ledger.split import SIGNS
from ops_pipeline.reports import queries as report_queries
from tests.factories import op, write_merchants, write_ops
from tests.test_api_operations import auth, wire
from tests.test_cli import CLI

# EUR, fee 2% + 0.10, dispute fee 15.00, rolling reserve 10% for 30 days
M5 = ("psp5", "lm5", "s5", "EUR", "M5", "", "2", "0.10", "15.00", "10", "30")
SHOP = dict(psp_id="psp5", local_merchant_id="lm5", shop_id="s5")
DAY = "2026-11-01T10:00:00Z"
OPS = [
    op("c1", "100.00", **SHOP),  # +10000; fee -(200 + 10); rolling reserve -1000
    op("cb1", "20.00", type="chargeback", **SHOP),  # -2000; dispute fee -1500
    op("cbr1", "20.00", type="chargeback_reversal", ref="cb1", **SHOP),  # +2000
    op("w1", "5.00", type="withdrawal", **SHOP),  # -500
    op("k1", "1.00", type="cashback", **SHOP),  # -100
    op("rs1", "50.00", type="reserve", **SHOP),  # -5000
    op("rr1", "20.00", type="reserve_release", ref="rs1", **SHOP),  # +2000
    op("fa1", "-0.50", type="fee_adjustment", **SHOP),  # -50
    op("fa2", "0.25", type="fee_adjustment", **SHOP),  # +25
]
ENTRIES = [
    ("c1", "capture", 10000), ("c1", "psp_fee", -210), ("c1", "rolling_reserve", -1000),
    ("cb1", "chargeback", -2000), ("cb1", "dispute_fee", -1500), ("cbr1", "chargeback_reversal", 2000),
    ("fa1", "fee_adjustment", -50), ("fa2", "fee_adjustment", 25), ("k1", "cashback", -100),
    ("rr1", "reserve_release", 2000), ("rs1", "reserve", -5000), ("w1", "withdrawal", -500),
]
NET = sum(e[2] for e in ENTRIES)  # 3665


@pytest.fixture
def m5(ws, tmp_path):
    merchants.load(ws, write_merchants(tmp_path / "m5.csv", [M5]))
    return ws


def log_rows(ws, source):
    con = analytics.connect(ws)
    return con.sql("SELECT falcon_operation_id, type, amount_minor FROM balance_operations "
                   "WHERE merchant_id = 'M5' AND source = ? ORDER BY ALL", params=[source]).fetchall()


def figures(ws):
    [b] = balances.get_balances(ws, "M5")
    return b.confirmed_minor, b.settled_minor, b.held_minor, b.available_minor


def reserved(ws):
    con = analytics.connect(ws)
    return con.sql("SELECT source, reserved_minor FROM (SELECT source, CAST(reserved * 100 AS BIGINT) "
                   "AS reserved_minor FROM merchant_reserves WHERE merchant_id = 'M5') ORDER BY 1").fetchall()


def test_every_type_has_a_split_rule():
    assert tuple(SIGNS) == OPERATION_TYPES


def test_each_type_splits_exactly_and_moves_the_balances(m5, tmp_path):
    ws = m5
    path = write_ops(tmp_path / "ops.csv", OPS)
    r = ingest.ingest_file(ws, path, "confirmed")
    assert (r.ingested, r.quarantined, r.entries) == (9, 0, 12)
    assert log_rows(ws, "CO") == sorted(ENTRIES)
    assert figures(ws) == (NET, 0, 0, 0)  # confirmed only: settled and available wait for the RO
    assert ingest.ingest_file(ws, path, "reconciled").entries == 12
    holds.place_hold(ws, "M5", "EUR", 1000, actor="test")
    assert figures(ws) == (NET, NET, 1000, NET - 1000)
    assert reserved(ws) == [("CO", 4000), ("RO", 4000)]  # 1000 rolling + 5000 - 2000 released
    assert balances.get_balances(ws, "M5")[0].reserved_minor == 4000  # the settled (RO) side, counted once

    again = ingest.ingest_file(ws, write_ops(tmp_path / "again.jsonl", OPS), "confirmed")
    assert (again.ingested, again.duplicates, again.quarantined) == (0, 9, 0)  # signed and reversal repeats

    # due after 30 days: each reserve's rest comes back, once
    assert reserves.release_due(ws, datetime(2026, 12, 1, 9, tzinfo=UTC)).released == 0
    done = reserves.release_due(ws, datetime(2026, 12, 1, 10, tzinfo=UTC))
    assert (done.released, done.amounts) == (4, {"EUR": 8000})
    assert reserves.release_due(ws, datetime(2027, 1, 1, tzinfo=UTC)).released == 0
    assert [e for e in log_rows(ws, "RO") if e[1] == "reserve_expiry"] == [
        ("c1", "reserve_expiry", 1000), ("rs1", "reserve_expiry", 3000)]
    assert figures(ws) == (NET + 4000, NET + 4000, 1000, NET + 3000)
    assert reserved(ws) == [("CO", 0), ("RO", 0)]
    assert balances.get_balances(ws, "M5")[0].reserved_minor == 0

    rebuilt = balances.rebuild(ws)
    assert rebuilt.differences == []
    assert balances.replay(ws, rebuilt.version).filter(merchant_id="M5").row(0)[2:4] == (NET + 4000,) * 2


def test_rules_of_the_new_types_quarantine_with_field_and_value(m5, tmp_path):
    ws = m5
    other = dict(psp_id="psp1", local_merchant_id="lm1", shop_id="s1")  # M1, EUR
    rows = [
        op("cb1", "20.00", type="chargeback", **SHOP),
        op("cbr1", "15.00", type="chargeback_reversal", ref="cb1", **SHOP),  # same file, earlier: fine
        op("cbr2", "5.01", type="chargeback_reversal", ref="cb1", **SHOP),
        op("cbr3", "1.00", type="chargeback_reversal", ref="cb-none", **SHOP),
        op("cbr4", "1.00", type="chargeback_reversal", ref="cb1", **other),
        op("rr1", "1.00", type="reserve_release", ref="rs-none", **SHOP),
        op("rs1", "10.00", type="reserve", **SHOP),
        op("rr2", "10.01", type="reserve_release", ref="rs1", **SHOP),
        op("fa0", "0.00", type="fee_adjustment", **SHOP),
        op("w1", "-5.00", type="withdrawal", **SHOP),
        op("k1", "1.005", type="cashback", **SHOP),
    ]
    r = ingest.ingest_file(ws, write_ops(tmp_path / "bad.csv", rows), "confirmed")
    assert (r.ingested, r.quarantined) == (3, 8)
    con = analytics.connect(ws)
    assert con.sql("SELECT falcon_operation_id, reason_code, reason FROM ledger_quarantine ORDER BY row_number"
                   ).fetchall() == [
        ("cbr2", "reversal_exceeds_chargeback", "amount: '5.01' is more than the 5.00 EUR left of chargeback 'cb1'"),
        ("cbr3", "no_prior_chargeback", "external_reference: 'cb-none' names no chargeback of merchant 'M5' in "
                                        "EUR (same source) before this chargeback_reversal"),
        ("cbr4", "no_prior_chargeback", "external_reference: 'cb1' names no chargeback of merchant 'M1' in EUR "
                                        "(same source) before this chargeback_reversal"),
        ("rr1", "no_prior_reserve", "external_reference: 'rs-none' names no reserve of merchant 'M5' in EUR "
                                    "(same source) before this reserve_release"),
        ("rr2", "release_exceeds_reserve", "amount: '10.01' is more than the 10.00 EUR left of reserve 'rs1'"),
        ("fa0", "zero_amount", "amount: '0.00' must not be zero for type 'fee_adjustment'"),
        ("w1", "non_positive_amount", "amount: '-5.00' must be positive"),
        ("k1", "too_many_decimals", "amount: '1.005' has 3 decimals, EUR allows 2"),
    ]
    # the chargeback is in the log now: a later file may reverse what is left of it, not more
    later = [op("cbr5", "5.00", type="chargeback_reversal", ref="cb1", **SHOP),
             op("cbr6", "0.01", type="chargeback_reversal", ref="cb1", **SHOP)]
    r = ingest.ingest_file(ws, write_ops(tmp_path / "later.csv", later), "confirmed")
    assert (r.ingested, r.quarantined) == (1, 1)


def test_merchant_context_fields_default_and_are_checked(ws, tmp_path):
    # a table written before the new columns: read as 0, and the next load adds them
    before = pa.schema([f for f in MERCHANT_CONTEXT.schema if f.name not in merchants.DEFAULTS])
    write_deltalake(ws.lake.table_uri(MERCHANT_CONTEXT.name),
                    merchants.current(ws).select(before.names).to_arrow().cast(before),
                    mode="overwrite", schema_mode="overwrite")
    view = "SELECT count(*), sum(dispute_fee), sum(reserve_days) FROM merchant_context"
    assert analytics.connect(ws).sql(view).fetchall() == [(4, 0, 0)]
    old = tmp_path / "old.csv"  # a file from before the new columns
    old.write_text("psp_id,local_merchant_id,shop_id,currency,merchant_id,balance_shop_id,fee_percent,fee_fixed\n"
                   "psp9,lm9,s9x,EUR,M9,,1,0.10\n")
    merchants.load(ws, old)
    row = merchants.current(ws).filter(merchant_id="M9").select(*merchants.DEFAULTS).row(0)
    assert row == (0, 0, 0)
    assert analytics.connect(ws).sql(view).fetchall() == [(5, 0, 0)]
    bad = [("percent without days", ("5", "0"), "reserve_days: '0' must be above 0 with reserve_percent '5'"),
           ("days", ("", "x"), "reserve_days: 'x' is not a whole number of days, 0 to 3650"),
           ("percent", ("100", "5"), "reserve_percent: '100' is not a percentage from 0 to 99.999999")]
    for _, (percent, days), message in bad:
        path = write_merchants(tmp_path / "bad.csv", [(*M5[:8], "15.00", percent, days)])
        with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
            merchants.load(ws, path)
    path = write_merchants(tmp_path / "fee.csv", [(*M5[:8], "15.001", "", "")])
    with pytest.raises(InvalidInput, match="dispute_fee"):
        merchants.load(ws, path)


def test_turnover_report_and_api_show_the_types(m5, tmp_path):
    ws = m5
    ingest.ingest_file(ws, write_ops(tmp_path / "ops.csv", OPS), "confirmed")
    with TestClient(create_app(ws.settings)) as client:
        posted = client.post("/api/operations", headers=auth(ws), json={"operations": [
            wire(op("cb2", "3.00", type="chargeback", **SHOP)),
            wire(op("cbr9", "3.00", type="chargeback_reversal", ref="cb-none", **SHOP))]})
        assert posted.status_code == 400, posted.text
        assert [(o["status"], o["reasonCode"]) for o in posted.json()["operations"]] == [
            ("accepted", None), ("rejected", "no_prior_chargeback")]
    con = analytics.connect(ws)
    assert con.sql(
        "SELECT captured, fees, charged_back, dispute_fees, chargebacks_reversed, withdrawn, cashback, "
        "fees_adjusted, reserved, reserve_returned, net FROM monthly_turnover WHERE merchant_id = 'M5'"
    ).fetchall() == [tuple(map(_dec, ("100", "2.10", "23", "30", "20", "5", "1", "-0.25", "60", "20",
                                      str((NET - 300 - 1500) / 100))))]
    with report_queries.connect(ws, datetime(2026, 11, 30).date()) as rcon:
        moves, types = report_queries.movements(
            rcon, datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=30))
    assert types[:5] == ["capture", "psp_fee", "refund", "payout", "adjustment"]
    assert set(types[5:]) == {"chargeback", "dispute_fee", "chargeback_reversal", "withdrawal", "cashback",
                              "fee_adjustment", "reserve", "rolling_reserve", "reserve_release"}
    [confirmed] = [m for m in moves if m.merchant_id == "M5" and m.basis == "confirmed"]
    assert confirmed.by_type["dispute_fee"] == -3000 and confirmed.by_type["chargeback"] == -2300


def _dec(text):
    return Decimal(text).quantize(Decimal("0.0001"))


def test_release_reserves_job_and_schedule_in_dagster(sqlite_ws, tmp_path, monkeypatch):
    monkeypatch.setenv("OPS_HOME", str(sqlite_ws.home))
    for name in ("OPS_DATABASE_URL", "OPS_LAKE_URI", "OPS_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    merchants.load(sqlite_ws, write_merchants(tmp_path / "m5.csv", [M5]))
    ingest.ingest_file(sqlite_ws, write_ops(tmp_path / "rs.csv", [op("rs1", "50.00", type="reserve", **SHOP)]),
                       "confirmed")  # dated 2026-11-01: 30 days passed
    schedule = definitions.defs.resolve_schedule_def("release_reserves_schedule")
    assert (schedule.job_name, schedule.cron_schedule) == ("release_reserves_job", "10 * * * *")
    with dg.instance_for_test() as instance:
        result = definitions.defs.resolve_job_def("release_reserves_job").execute_in_process(instance=instance)
    assert result.output_for_node("release_due_reserves") == 1
    assert log_rows(sqlite_ws, "CO") == [("rs1", "reserve", -5000), ("rs1", "reserve_expiry", 5000)]


def test_command_line_releases_reserves_and_shows_turnover_by_type(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_")} | {"OPS_HOME": str(tmp_path / "h")}

    def run(*args):
        p = subprocess.run([CLI, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, (p.stdout, p.stderr)
        return p.stdout

    run("init")
    run("merchants", "load", write_merchants(tmp_path / "m.csv", [M5]))
    ops = [op("rs1", "50.00", type="reserve", **SHOP), op("cb1", "20.00", type="chargeback", **SHOP)]
    assert "2 ingested (3 entries)" in run("ledger", "ingest", write_ops(tmp_path / "co.csv", ops),
                                           "--kind", "confirmed")
    assert "1 reserves given back (50.00 EUR)" in run("ledger", "release-reserves")
    assert "0 reserves given back (nothing)" in run("ledger", "release-reserves")
    rows = json.loads(run("ledger", "turnover", "--merchant", "M5", "--format", "json"))
    columns = ("month", "charged_back", "dispute_fees", "reserved", "reserve_returned", "net")
    assert [tuple(r[c] for c in columns) for r in rows] == [  # given back when due: 2026-11-01 + 30 days
        ("2026-11-01", "20.0000", "15.0000", "50.0000", "0.0000", "-85.0000"),
        ("2026-12-01", "0.0000", "0.0000", "0.0000", "50.0000", "50.0000")]
