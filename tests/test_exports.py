"""Formula injection: CSV for people escapes text a spreadsheet would run (OWASP: a leading quote), keeps
numbers as numbers; the CLI's `--format csv` and the demo's report files go through it."""

import csv
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ops_pipeline.demo.run import _reports
from ops_pipeline.exports import csv_text, safe_cell, write_csv
from ops_pipeline.ledger import ingest
from tests.factories import op, write_ops

CLI = str(Path(sys.executable).with_name("ops-pipeline"))


@pytest.mark.parametrize("value", ["=1+1", "+1+2", "-1+2", "@SUM(A1:A9)", "\t=1", "\r=1", "\n=1", "\0x",
                                   "=HYPERLINK(\"http://x\",\"y\")", "-", "+33 6 12 34 56 78", "-2e3"])
def test_text_a_spreadsheet_would_run_gets_a_leading_quote(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize(("value", "cell"), [
    ("plain", "plain"), ("a=b", "a=b"), (" =1", " =1"), ("", ""), ("'=1", "'=1"),
    ("-10.00", "-10.00"), ("+5", "+5"), ("-3", "-3"),  # a number written as text is a number, not a formula
    (Decimal("-10.00"), "-10.00"), (Decimal("1E+2"), "100"), (-5, "-5"), (None, ""), (True, "True"),
    (datetime(2026, 12, 5, 13, 0, tzinfo=UTC), "2026-12-05T13:00:00+00:00"),
])
def test_values_and_harmless_text_stay_as_they_are(value, cell):
    assert safe_cell(value) == cell


def test_csv_files_quote_like_rfc_4180_and_read_back(tmp_path):
    rows = [["M1", Decimal("-6.80"), '=cmd|"/c calc"!A1'], ["a,b", -1, "line\nbreak"]]
    path = write_csv(tmp_path / "out.csv", ["merchant_id", "amount", "note"], rows)
    with open(path, newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["merchant_id", "amount", "note"],
            ["M1", "-6.80", "'=cmd|\"/c calc\"!A1"],
            ["a,b", "-1", "line\nbreak"],
        ]
    assert csv_text(["x"], [["@x"]]) == "x\n'@x\n"


def test_cli_csv_output_escapes_formulas_and_json_does_not(tmp_path):
    env = {**os.environ, "OPS_HOME": str(tmp_path / "home")}
    env.pop("OPS_DATABASE_URL", None)
    query = ("SELECT '=1+1' AS f, '@SUM(A1)' AS g, -5 AS n, CAST(-1.50 AS DECIMAL(10, 2)) AS d, "
             "'-2.5' AS t, 'plain' AS p")

    def run(fmt: str) -> str:
        done = subprocess.run([CLI, "sql", query, "--format", fmt], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert run("csv") == "f,g,n,d,t,p\n'=1+1,'@SUM(A1),-5,-1.50,-2.5,plain\n"
    assert '"f": "=1+1"' in run("json")


def test_the_demo_quarantine_report_escapes_a_hostile_file_name(sqlite_ws, tmp_path):
    hostile = write_ops(tmp_path / "=HYPERLINK(1).csv", [op("o1", "-1")])
    assert ingest.ingest_file(sqlite_ws, hostile, "confirmed").quarantined == 1
    folder = _reports(sqlite_ws)
    with open(folder / "quarantine.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["file_name"] for r in rows] == ["'=HYPERLINK(1).csv"]
    assert rows[0]["row_number"] == "1"
    with open(folder / "merchant_balances.csv", newline="") as handle:
        assert next(csv.reader(io.StringIO(handle.read()))) == [
            "merchant_id", "currency", "confirmed_balance", "settled_balance", "held", "available", "as_of"]
