"""Splitting, validation, quarantine and idempotency of ingest (ARCHITECTURE section 5), on SQLite and PostgreSQL."""

from pathlib import Path

import pytest

from ops_pipeline import analytics
from ops_pipeline.errors import InvalidInput
from ops_pipeline.ledger import OPERATION_TYPES, balances, ingest, merchants
from tests.factories import MERCHANTS, op, write_merchants, write_ops


def log_rows(ws, where="TRUE"):
    con = analytics.connect(ws)
    return con.sql(
        f"SELECT falcon_operation_id, source, type, amount_minor, currency, merchant_id FROM balance_operations "
        f"WHERE {where} ORDER BY falcon_operation_id, type"
    ).fetchall()


def quarantine(ws):
    con = analytics.connect(ws)
    return con.sql(
        "SELECT row_number, reason_code, reason, status FROM ledger_quarantine ORDER BY source, file_name, row_number"
    ).fetchall()


def test_capture_splits_into_amount_and_fee_refund_has_no_fee(ws, tmp_path):
    rows = [
        op("c1", "100.00"),  # EUR 2.9% + 0.30
        op("r1", "10.50", type="refund"),
        op("c2", "1000", merchant="M2"),  # JPY 3.5%, no fixed fee
        op("c3", "1.235", merchant="M3"),  # BHD 1.25% + 0.005
        op("c4", "20.00", merchant="M4"),  # zero fee: no psp_fee entry
    ]
    r = ingest.ingest_file(ws, write_ops(tmp_path / "co.csv", rows), "confirmed")
    assert (r.rows, r.ingested, r.entries, r.quarantined) == (5, 5, 8, 0)
    assert log_rows(ws) == [
        ("c1", "CO", "capture", 10000, "EUR", "M1"),
        ("c1", "CO", "psp_fee", -320, "EUR", "M1"),
        ("c2", "CO", "capture", 1000, "JPY", "M2"),
        ("c2", "CO", "psp_fee", -35, "JPY", "M2"),
        ("c3", "CO", "capture", 1235, "BHD", "M3"),
        ("c3", "CO", "psp_fee", -20, "BHD", "M3"),
        ("c4", "CO", "capture", 2000, "EUR", "M4"),
        ("r1", "CO", "refund", -1050, "EUR", "M1"),
    ]
    assert [(b.currency, b.confirmed_minor, b.settled_minor) for b in balances.get_balances(ws, "M1")] == [
        ("EUR", 10000 - 320 - 1050, 0)
    ]


def test_confirmed_and_reconciled_feed_their_own_balance(ws, tmp_path):
    f = write_ops(tmp_path / "ops.csv", [op("c1", "100.00")])
    ingest.ingest_file(ws, f, "confirmed")
    [b] = balances.get_balances(ws, "M1")
    assert (b.confirmed_minor, b.settled_minor, b.available_minor) == (9680, 0, 0)
    r = ingest.ingest_file(ws, f, "reconciled")  # the same operation, reconciled: a separate RO key
    assert (r.ingested, r.duplicates) == (1, 0)
    [b] = balances.get_balances(ws, "M1")
    assert (b.confirmed_minor, b.settled_minor, b.available_minor) == (9680, 9680, 9680)


def test_every_bad_row_is_quarantined_with_a_reason_naming_column_and_value(ws, tmp_path):
    rows = [
        op("ok", "5.00"),
        op("neg", "-5.00"),
        op("zero", "0.00"),
        op("dec", "5.001"),
        op("yen", "5.5", merchant="M2"),
        op("cur", "5.00", currency="XYZ"),
        op("typ", "5.00", type="bounce"),
        op("dat", "5.00", date="2026-02-30T10:00:00Z"),
        op("fmt", "5.00", date="yesterday"),
        op("nan", "abc"),
        op("mer", "5.00", psp_id="psp-unknown"),
        op("", "5.00"),
    ]
    r = ingest.ingest_file(ws, write_ops(tmp_path / "bad.csv", rows), "confirmed")
    assert (r.ingested, r.quarantined, r.newly_quarantined) == (1, 11, 11)
    assert [(n, code, reason) for n, code, reason, _ in quarantine(ws)] == [
        (2, "non_positive_amount", "amount: '-5.00' must be positive"),
        (3, "non_positive_amount", "amount: '0.00' must be positive"),
        (4, "too_many_decimals", "amount: '5.001' has 3 decimals, EUR allows 2"),
        (5, "too_many_decimals", "amount: '5.5' has 1 decimals, JPY allows 0"),
        (6, "unknown_currency", "currency: 'XYZ' is not an ISO 4217 currency with minor units"),
        (7, "unknown_type", "type: 'bounce' is not one of " + ", ".join(OPERATION_TYPES)),
        (8, "bad_date", "operation_date: '2026-02-30T10:00:00Z' is not a valid date-time"),
        (9, "bad_date", "operation_date: 'yesterday' is not an ISO 8601 date or date-time"),
        (10, "bad_amount", "amount: 'abc' is not a decimal number"),
        (
            11,
            "unknown_merchant",
            "merchant context: no row for psp_id='psp-unknown', local_merchant_id='lm1', shop_id='s1', currency='EUR'",
        ),
        (12, "missing_value", "falcon_operation_id: value is missing"),
    ]
    assert log_rows(ws, "falcon_operation_id <> 'ok'") == []


def test_same_file_twice_and_overlapping_files_never_double_count(ws, tmp_path):
    a = write_ops(tmp_path / "a.csv", [op("o1", "10.00"), op("o2", "20.00"), op("bad", "-1")])
    b = write_ops(tmp_path / "b.jsonl", [op("o2", "20.00"), op("o3", "30.00")])
    first = ingest.ingest_file(ws, a, "confirmed")
    again = ingest.ingest_file(ws, a, "confirmed")
    overlap = ingest.ingest_file(ws, b, "confirmed")
    assert (first.ingested, first.duplicates, first.newly_quarantined) == (2, 0, 1)
    assert (again.ingested, again.duplicates, again.quarantined, again.newly_quarantined) == (0, 2, 1, 0)
    assert (overlap.ingested, overlap.duplicates) == (1, 1)
    assert len(quarantine(ws)) == 1  # the rejected row is recorded once, not per ingest
    [b_] = balances.get_balances(ws, "M1")
    fees = sum(round(x * 2.9) + 30 for x in (10, 20, 30))  # integer cents: 29+30, 58+30, 87+30
    assert b_.confirmed_minor == 6000 - fees
    con = analytics.connect(ws)
    assert con.sql("SELECT count(*) FROM confirmed_operations").fetchall() == [(5,)]  # raw: each file once


def test_conflicting_duplicates_are_quarantined_not_applied(ws, tmp_path):
    ingest.ingest_file(ws, write_ops(tmp_path / "a.csv", [op("o1", "10.00")]), "confirmed")
    rows = [op("o1", "11.00"), op("o2", "5.00"), op("o2", "5.00", type="refund")]
    r = ingest.ingest_file(ws, write_ops(tmp_path / "b.csv", rows), "confirmed")
    assert (r.ingested, r.duplicates, r.quarantined) == (1, 0, 2)
    reasons = {n: reason for n, code, reason, _ in quarantine(ws) if code == "conflicting_duplicate"}
    assert reasons == {
        1: "falcon_operation_id: 'o1' already in the ledger (source CO) with different content: amount 10.00 vs 11.00",
        3: "falcon_operation_id: 'o2' already earlier in this file (source CO) with different content: "
        "type 'capture' vs 'refund'",
    }
    assert [r[3] for r in log_rows(ws, "type <> 'psp_fee'")] == [1000, 500]


def test_csv_jsonl_and_parquet_give_the_same_ledger(ws, tmp_path):
    rows = [op("o1", "10.00"), op("o2", "1.5", type="refund"), op("o3", "7", merchant="M2")]
    results = [
        ingest.ingest_file(ws, write_ops(tmp_path / f"ops{suffix}", rows), kind)
        for suffix, kind in ((".csv", "confirmed"), (".parquet", "reconciled"))
    ]
    assert [(r.ingested, r.entries) for r in results] == [(3, 4), (3, 4)]  # JPY 7 x 3.5% rounds to no fee
    assert ingest.ingest_file(ws, write_ops(tmp_path / "ops.jsonl", rows), "confirmed").duplicates == 3
    co = [r[2:] for r in log_rows(ws, "source = 'CO'")]
    ro = [r[2:] for r in log_rows(ws, "source = 'RO'")]
    assert co == ro


def test_dates_without_offset_are_in_ops_timezone(tmp_path):
    from ops_pipeline.workspace import Workspace
    from tests.conftest import make_settings

    ws = Workspace(make_settings(tmp_path / "h", OPS_TIMEZONE="Europe/Berlin"))
    ws.init()
    merchants.load(ws, write_merchants(tmp_path / "m.csv"))
    rows = [op("a", "1.00", date="2026-07-01 12:00:00"), op("b", "1.00", date="2026-07-01T12:00:00+00:00")]
    ingest.ingest_file(ws, write_ops(tmp_path / "o.csv", rows), "confirmed")
    con = analytics.connect(ws)
    got = con.sql(
        "SELECT falcon_operation_id, strftime(operation_date AT TIME ZONE 'UTC', '%H:%M') FROM balance_operations "
        "WHERE type = 'capture' ORDER BY 1"
    ).fetchall()
    assert got == [("a", "10:00"), ("b", "12:00")]
    ws.close()


def test_reprocess_ingests_rows_whose_merchant_context_arrived(ws, tmp_path):
    rows = [op("o1", "10.00"), op("x1", "10.00", psp_id="psp9"), op("bad", "-1"), op("x2", "3.00", psp_id="psp9")]
    f = write_ops(tmp_path / "co.csv", rows)
    r = ingest.ingest_file(ws, f, "confirmed")
    assert (r.ingested, r.quarantined) == (1, 3)
    assert sum(x.ingested for x in ingest.reprocess(ws, actor="test")) == 0  # cause not gone yet: stays, once
    assert len(quarantine(ws)) == 3
    ctx = [*MERCHANTS, ("psp9", "lm1", "s1", "EUR", "M9", "", "1", "0")]
    merchants.load(ws, write_merchants(tmp_path / "m2.csv", ctx))
    results = ingest.reprocess(ws, actor="test")
    assert sum(x.ingested for x in results) == 2
    assert sorted((n, code, status) for n, code, _, status in quarantine(ws)) == [
        (2, "unknown_merchant", "resolved"),
        (3, "non_positive_amount", "open"),
        (4, "unknown_merchant", "resolved"),
    ]
    [b] = balances.get_balances(ws, "M9")
    assert b.confirmed_minor == 1300 - 10 - 3  # 1% fee on each
    assert ingest.ingest_file(ws, f, "confirmed").ingested == 0  # and the file itself is now fully in


def test_missing_column_and_unknown_file_type_are_user_errors(ws, tmp_path):
    (tmp_path / "x.csv").write_text("falcon_operation_id,amount\n1,2\n")
    with pytest.raises(InvalidInput, match=r"file: 'x.csv' lacks column\(s\) 'type', 'currency'"):
        ingest.ingest_file(ws, tmp_path / "x.csv", "confirmed")
    with pytest.raises(InvalidInput, match=r"unknown type; use .csv, .jsonl or .parquet"):
        ingest.ingest_file(ws, Path(tmp_path / "x.xlsx"), "confirmed")
    with pytest.raises(InvalidInput, match="kind: 'settled' is not one of confirmed, reconciled"):
        ingest.ingest_file(ws, tmp_path / "x.csv", "settled")


def test_bad_merchant_context_file_is_refused_whole(ws, tmp_path):
    bad = [("psp1", "lm1", "s1", "EUR", "M1", "", "2.9", "0.301"), ("psp1", "lm5", "s1", "ABC", "M5", "", "1", "0")]
    with pytest.raises(InvalidInput) as err:
        merchants.load(ws, write_merchants(tmp_path / "bad.csv", bad))
    assert "row 1: fee_fixed: '0.301' has 3 decimals, EUR allows 2" in str(err.value)
    assert "row 2: currency: 'ABC' is not an ISO 4217 currency" in str(err.value)
    assert len(merchants.current(ws)) == len(MERCHANTS)  # nothing changed


def test_unknown_merchants_among_thousands_of_rows(ws, tmp_path):
    """Regression: a large file with a few unknown merchant contexts in it (once a polars panic)."""
    rows = [op(f"o{i}", f"{1 + i % 50}.00", merchant=("M1", "M2", "M3", "M4")[i % 4] if i % 4 != 1 else "M1")
            for i in range(6000)]
    for i in range(0, 6000, 600):
        rows[i] = op(f"x{i}", "5.00", psp_id="psp-late")
    rows[3001] = op("bad-date", "5.00", date="2026-02-30T10:00:00Z")
    r = ingest.ingest_file(ws, write_ops(tmp_path / "big.csv", rows), "confirmed")
    assert (r.ingested, r.quarantined) == (5989, 11)
    codes = sorted({code for _, code, _, _ in quarantine(ws)})
    assert codes == ["bad_date", "unknown_merchant"]
