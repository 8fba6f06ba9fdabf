"""Bad operation files and bad values (issue 9): one line per unreadable file, a reason per bad value."""

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from ops_pipeline import analytics
from ops_pipeline.errors import InvalidInput
from ops_pipeline.ledger import balances, ingest, merchants
from ops_pipeline.ledger.validation import MAX_ID_LENGTH
from tests.factories import op, write_merchants, write_ops

CLI = str(Path(sys.executable).with_name("ops-pipeline"))
HEADER = "falcon_operation_id,external_reference,type,amount,currency,operation_date,psp_id,local_merchant_id,shop_id\n"
GOOD = "o1,r1,capture,10.00,EUR,2026-11-01T10:00:00Z,psp1,lm1,s1\n"


def quarantined(ws) -> list[tuple[int, str, str]]:
    return analytics.connect(ws).sql(
        "SELECT row_number, reason_code, reason FROM ledger_quarantine ORDER BY row_number"
    ).fetchall()


def amounts(ws) -> dict[str, int]:
    rows = analytics.connect(ws).sql(
        "SELECT falcon_operation_id, amount_minor FROM balance_operations WHERE type = 'capture'"
    ).fetchall()
    return dict(rows)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (GOOD + 'o2,"r2,capture,10.00,EUR,2026-11-01T10:00:00Z,psp1,lm1,s1\n' + GOOD,
         "row 2, line 3: a quoted cell is never closed (unbalanced quote)"),
        (GOOD + GOOD.replace("\n", ",extra\n") + GOOD, "row 2, line 3: 10 cells, the header has 9"),
        (GOOD + 'o2,"r2"x,capture,10.00,EUR,2026-11-01T10:00:00Z,psp1,lm1,s1\n',
         "row 2, line 3: a quote inside a cell is not escaped (',' expected after '\"')"),
    ],
    ids=["unbalanced-quote", "extra-cells", "stray-quote"],
)
def test_unreadable_csv_ends_with_one_line_naming_file_row_and_problem(tmp_path, db_url, content, problem):
    path = tmp_path / "co.csv"
    path.write_text(HEADER + content)
    env = {**os.environ, "OPS_HOME": str(tmp_path / "home"), "OPS_DATABASE_URL": db_url}
    p = subprocess.run([CLI, "ledger", "ingest", str(path), "--kind", "confirmed"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr.splitlines() == [f"error: file: 'co.csv' {problem}"]


def test_unreadable_jsonl_and_parquet_are_one_line_errors(ws, tmp_path):
    (tmp_path / "co.jsonl").write_text('{"falcon_operation_id": "o1"}\n{"falcon_operation_id": "o2",}\n')
    with pytest.raises(InvalidInput) as err:
        ingest.ingest_file(ws, tmp_path / "co.jsonl", "confirmed")
    assert str(err.value).startswith("file: 'co.jsonl' row 2: not valid JSON (Expecting property name")
    (tmp_path / "co.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(InvalidInput) as err:
        ingest.ingest_file(ws, tmp_path / "co.parquet", "confirmed")
    assert str(err.value).startswith("file: 'co.parquet' cannot be read: ")
    for e in (err.value,):
        assert "\n" not in str(e)


def test_merchant_context_file_with_a_broken_quote_is_refused_in_one_line(ws, tmp_path):
    path = write_merchants(tmp_path / "m.csv")
    path.write_text(path.read_text() + 'psp9,"lm9,s9,EUR,M9,,1,0\n')
    with pytest.raises(InvalidInput, match=r"^file: 'm.csv' row 5, line 6: a quoted cell is never closed"):
        merchants.load(ws, path)


ID_COLUMNS = {"falcon_operation_id": None, "external_reference": "ref", "psp_id": "psp_id",
              "local_merchant_id": "local_merchant_id", "shop_id": "shop_id"}


def _with_id(op_id: str, column: str, value: str) -> dict:
    if column == "falcon_operation_id":
        return op(value, "5.00", ref="r")
    return op(op_id, "5.00", **{column: value})


@pytest.mark.parametrize("column", list(ID_COLUMNS))
def test_ids_too_long_or_with_control_characters_are_quarantined_as_such(ws, tmp_path, column):
    long_id = "x" * (MAX_ID_LENGTH + 1)
    rows = [op("ok", "5.00"), _with_id("long", column, long_id), _with_id("nul", column, "ab\x00c"),
            _with_id("max", column, "y" * MAX_ID_LENGTH) if column in ("falcon_operation_id",
                                                                      "external_reference") else op("x", "1.00")]
    r = ingest.ingest_file(ws, write_ops(tmp_path / "co.parquet", rows), "confirmed")
    got = quarantined(ws)
    assert [(n, code) for n, code, _ in got] == [(2, "id_too_long"), (3, "control_character")]
    assert got[0][2].startswith(f"{column}: 'xxxxxxxx")
    assert f"has {MAX_ID_LENGTH + 1} characters, more than {MAX_ID_LENGTH}" in got[0][2]
    assert long_id not in got[0][2]  # the value is cut, not echoed whole
    assert got[1][2].startswith(f"{column}: 'ab\ufffdc' contains a control character")
    assert "\x00" not in got[1][2]
    assert (r.ingested, r.quarantined) == (2, 2)


def test_control_characters_from_csv_and_in_the_merchant_key_of_a_unique_shop_context(ws, tmp_path):
    """The fast path joins on shop_id alone when it is unique in the context; it must keep every rule."""
    merchants.load(ws, write_merchants(tmp_path / "m.csv", [("psp1", "lm1", "s1", "EUR", "M1", "", "1", "0"),
                                                            ("psp2", "lm2", "s2", "EUR", "M2", "", "0", "0")]),
                   replace_all=True)
    rows = [op("ok", "5.00"), op("tab", "5.00", local_merchant_id="lm\t1"),
            op("psp", "5.00", psp_id="psp2"), op("cur", "5.00", currency="USD")]
    r = ingest.ingest_file(ws, write_ops(tmp_path / "co.csv", rows), "confirmed")
    assert (r.ingested, r.quarantined) == (1, 3)
    got = quarantined(ws)
    assert [(n, code) for n, code, _ in got] == [(2, "control_character"), (3, "unknown_merchant"),
                                                 (4, "unknown_merchant")]
    assert got[1][2] == ("merchant context: no row for psp_id='psp2', local_merchant_id='lm1', shop_id='s1', "
                         "currency='EUR'")
    assert [(b.currency, b.confirmed_minor) for b in balances.get_balances(ws, "M1")] == [("EUR", 500 - 5)]


def test_amount_digits_of_other_scripts_are_quarantined_as_such_plus_and_blanks_are_accepted(ws, tmp_path):
    rows = [
        op("arabic", "\u0661\u0660.\u0660\u0660"),  # Arabic-Indic 10.00
        op("mixed", "1\u0660"),
        op("devanagari", "\u0968\u0966"),
        op("plus", "+10.00"),
        op("blanks", " 10.00 "),
        op("tab", "\t10.00"),
        op("nbsp", "10.00\u00a0"),
        op("fullwidth", "\uff11\uff10"),
    ]
    r = ingest.ingest_file(ws, write_ops(tmp_path / "co.jsonl", rows), "confirmed")
    assert amounts(ws) == {"plus": 1000, "blanks": 1000, "tab": 1000}
    assert (r.ingested, r.quarantined) == (3, 5)
    assert quarantined(ws) == [
        (1, "non_ascii_digit", "amount: '\u0661\u0660.\u0660\u0660' has digits other than ASCII 0-9"),
        (2, "non_ascii_digit", "amount: '1\u0660' has digits other than ASCII 0-9"),
        (3, "non_ascii_digit", "amount: '\u0968\u0966' has digits other than ASCII 0-9"),
        (7, "bad_amount", "amount: '10.00\u00a0' is not a decimal number"),
        (8, "non_ascii_digit", "amount: '\uff11\uff10' has digits other than ASCII 0-9"),
    ]


def test_dates_with_digits_of_other_scripts_are_bad_dates(ws, tmp_path):
    rows = [op("ok", "5.00"), op("arabic", "5.00", date="\u0662\u0660\u0662\u0666-11-01")]
    r = ingest.ingest_file(ws, write_ops(tmp_path / "co.parquet", rows), "confirmed")
    assert (r.ingested, r.quarantined) == (1, 1)
    assert quarantined(ws)[0][1] == "bad_date"


def test_ingest_of_a_unique_shop_context_gives_the_same_ledger_as_the_general_join(ws, tmp_path):
    """Same rows, context with unique shop_id (single-key join) against the sample one (four-key join)."""
    sample = ingest.ingest_file(ws, write_ops(tmp_path / "a.parquet", [op("a", "12.34"), op("b", "1.00")]),
                                "confirmed")
    merchants.load(ws, write_merchants(tmp_path / "m.csv", [("psp1", "lm1", "s1", "EUR", "M1", "bs1", "2.9",
                                                             "0.30")]), replace_all=True)
    unique = ingest.ingest_file(ws, write_ops(tmp_path / "b.parquet", [op("c", "12.34"), op("d", "1.00")]),
                                "confirmed")
    assert (sample.entries, unique.entries) == (4, 4)
    rows = analytics.connect(ws).sql(
        "SELECT falcon_operation_id, type, amount_minor, merchant_id, balance_shop_id FROM balance_operations "
        "ORDER BY falcon_operation_id, type"
    ).fetchall()
    assert [r[1:] for r in rows[:4]] == [r[1:] for r in rows[4:]]
    assert pl.DataFrame(rows, orient="row")["column_0"].to_list() == ["a", "a", "b", "b", "c", "c", "d", "d"]
