"""Finance reports from a real ledger and real settlement runs, on SQLite and PostgreSQL: the numbers in the
XLSX (read with openpyxl), the monthly tie-out against the ledger's own as-of balances, atomic rebuilds, the
CLI, the Dagster assets, the REST API's roles and files over a real server, and the console page."""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import BytesIO

import dagster as dg
import httpx
import openpyxl
import pytest

from ops_pipeline.auth import mint_token
from ops_pipeline.ledger import balances, ingest, merchants
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.recon import settlement
from ops_pipeline.reports import build
from tests.console import console_client
from tests.factories import MERCHANTS, op, write_merchants, write_ops
from tests.servers import api, environment, run
from tests.test_recon_settlement import COS, ROS

NOV = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def world(ws, tmp_path):
    return make_world(ws, tmp_path)


def make_world(ws, tmp_path):
    """The settlement sample of tests/test_recon_settlement.py plus a JPY capture (matched), a payout and an
    adjustment in November; reconciled on 1 and 5 November."""
    usd = ("psp1", "lm1", "s1", "USD", "M1", "bs1", "2.9", "0.30")
    merchants.load(ws, write_merchants(tmp_path / "usd.csv", [*MERCHANTS, usd]))
    jpy = op("j1", "1200", merchant="M2")
    for kind, rows in (("confirmed", [*COS, jpy]), ("reconciled", [*ROS, jpy])):
        ingest.ingest_file(ws, write_ops(tmp_path / f"{kind}.csv", rows), kind)
    post_entries(ws, [Entry("PAYOUT", "p1", "M1", "EUR", -5000, "payout", operation_date=NOV + timedelta(days=19)),
                      Entry("ADJUSTMENT", "a1", "M1", "EUR", 123, "adjustment",
                            operation_date=NOV + timedelta(days=20))], "test-entries")
    for day in (1, 5):
        settlement.run(ws, date(2026, 11, day), actor="test")
    return ws


def sheet(book, name: str) -> list[tuple]:
    return [r for r in book[name].iter_rows(values_only=True)][1:]


def test_daily_report_numbers_formats_and_charts(world):
    built = build.build_day(world, "2026-11-01")
    book = openpyxl.load_workbook(built.files[1])
    assert sheet(book, "Summary") == [
        ("settlement", "EUR", "matched", 3, 143, 143, 0),
        ("settlement", "EUR", "matched_with_difference", 1, 20, 19.5, 0.5),
        ("settlement", "EUR", "unmatched", 4, 80, 5, 75),  # c4, c5, c6 (CO side) and r9 (RO side)
        ("settlement", "JPY", "matched", 1, 1200, 1200, 0),
        ("settlement", "USD", "unmatched", 1, 0, 10, -10),
    ]
    formats = {r[1].value: r[4].number_format for r in book["Summary"].iter_rows(min_row=2)}
    assert formats == {"EUR": "#,##0.00", "JPY": "#,##0", "USD": "#,##0.00"}
    assert sheet(book, "Aging") == [("0-1", "EUR", 3, 80)]
    assert sorted((r[4], r[9] or r[10], r[6], r[7], r[3]) for r in sheet(book, "Breaks")) == [
        ("unmatched_external", "c4", 0, 10, 0), ("unmatched_external", "r9", 0, 5, 0),
        ("unmatched_internal", "c4", 10, 0, 0), ("unmatched_internal", "c5", 30, 0, 0),
        ("unmatched_internal", "c6", 40, 0, 0)]
    assert [r[6:11] for r in sheet(book, "Differences")] == [(20, 19.5, 0.5, "c3", "c3")]
    assert len(sheet(book, "ChartDays")) == 30 and sheet(book, "ChartDays")[-1] == ("2026-11-01", 5, 5)
    with zipfile.ZipFile(built.files[1]) as z:  # native charts (openpyxl does not load them)
        assert sorted(n for n in z.namelist() if n.startswith("xl/charts/chart")) == [
            "xl/charts/chart1.xml", "xl/charts/chart2.xml"]
    # four days later: the same COs are 4 days old, and the late RO of c6 is a break of its own date
    later = openpyxl.load_workbook(build.build_day(world, date(2026, 11, 5)).files[1])
    assert sheet(later, "Aging") == [("4-7", "EUR", 3, 80)]
    assert sorted((r[2], r[3], r[4], r[10]) for r in sheet(later, "Breaks"))[-1] == (
        "2026-11-05", 0, "unmatched_external", "c6")
    assert {r[3] for r in sheet(later, "Breaks") if r[2] == "2026-11-01"} == {4}


def test_month_report_balances_tie_to_the_ledger(world):
    built = build.build_month(world, "2026-11")
    assert (built.balances, built.untied) == (7, 0)
    book = openpyxl.load_workbook(built.files[1])
    header = next(book["Balances"].iter_rows(values_only=True))
    assert header == ("Merchant", "Currency", "Balance", "Opening", "capture", "fee", "refund", "payout",
                      "adjustment", "Closing", "Ledger", "Ties")
    rows = {(r[0], r[1], r[2]): r[3:] for r in sheet(book, "Balances")}
    # c8 (1 October, 1.00 less its fee 0.33) opens M1's confirmed balance; RO-side nothing before November
    assert rows[("M1", "EUR", "confirmed")] == (0.67, 160, -5.84, -7, -50, 1.23, 99.06, 99.06, "yes")
    assert rows[("M1", "EUR", "settled")] == (0, 124.5, -4.52, -7, -50, 1.23, 64.21, 64.21, "yes")
    assert rows[("M2", "JPY", "confirmed")][-3:] == (1158, 1158, "yes")
    end = datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC)
    for (merchant, currency, basis), values in rows.items():
        opening, *moved, closing, ledger, ties = values
        exp = 0 if currency == "JPY" else 2
        assert sum(Decimal(str(v)) for v in (opening, *moved)) == Decimal(str(closing)).quantize(
            Decimal(1).scaleb(-exp))
        (as_of,) = balances.balances_as_of(world, merchant, end, currency)  # the ledger's own as-of read
        assert Decimal(str(ledger)).scaleb(exp) == getattr(as_of, f"{basis}_minor") and ties == "yes"
    fmt = {r[1].value: r[9].number_format for r in book["Balances"].iter_rows(min_row=2)}
    assert fmt == {"EUR": "#,##0.00", "JPY": "#,##0", "USD": "#,##0.00"}
    assert len(sheet(book, "ChartDays")) == 30
    assert [r[9] for r in sheet(book, "Differences")] == ["c3"]


def test_rebuild_replaces_files_atomically_and_lists_them(world):
    first = build.build_day(world, "2026-11-01")
    build.build_month(world, "2026-11")
    again = build.build_day(world, "2026-11-01")
    assert again.files == first.files
    folder = world.settings.reports_dir
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "daily/2026-11-01.html", "daily/2026-11-01.xlsx", "monthly/2026-11.html", "monthly/2026-11.xlsx"]
    build.build_day(world, "2026-11-05")
    assert [(f.kind, f.period, f.format) for f in build.list_reports(world)] == [
        ("daily", "2026-11-05", "xlsx"), ("daily", "2026-11-05", "html"),
        ("daily", "2026-11-01", "xlsx"), ("daily", "2026-11-01", "html"),
        ("monthly", "2026-11", "xlsx"), ("monthly", "2026-11", "html")]


def test_cli_build_and_list(world):
    env = environment(world)
    out = run(env, "reports", "build", "--date", "2026-11-01").stdout
    assert "daily/2026-11-01.xlsx" in out
    assert "settlement  EUR       matched_with_difference  1      20.00     19.50     0.50" in out
    out = run(env, "reports", "build", "--month", "2026-11").stdout
    assert "balances: 7, not tying to the ledger: 0" in out
    listed = run(env, "reports", "list", "--format", "csv").stdout.splitlines()
    assert listed[0] == "kind,period,format,size,built_at,path" and len(listed) == 5
    import subprocess

    from tests.servers import CLI
    for args, message in (
        ([], "error: date, month: give exactly one of --date YYYY-MM-DD and --month YYYY-MM"),
        (["--date", "2026-11-01", "--month", "2026-11"],
         "error: date, month: give exactly one of --date YYYY-MM-DD and --month YYYY-MM"),
        (["--date", "2026-11-31"], "error: date: '2026-11-31' is not an ISO date (YYYY-MM-DD)"),
        (["--month", "11/2026"], "error: month: '11/2026' is not YYYY-MM"),
    ):
        done = subprocess.run([CLI, "reports", "build", *args], env=env, capture_output=True, text=True)
        assert (done.returncode, done.stderr.strip().splitlines()) == (1, [message])


def test_dagster_assets_build_the_partition_and_show_the_summary(world):
    from assets.reports.defs import finance_month_report, finance_report
    from resources.ops import OpsResource

    s = world.settings
    ops = OpsResource(ops_home=str(s.home), database_url=s.database_url)
    day = dg.materialize([finance_report], resources={"ops": ops}, partition_key="2026-11-01")
    (meta,) = [e.materialization.metadata for e in day.get_asset_materialization_events()]
    assert "| settlement | EUR | matched_with_difference | 1 | 20.00 | 19.50 | 0.50 |" in meta["summary"].value
    assert meta["open_breaks"].value == 5
    assert meta["xlsx_file"].value == str(s.reports_dir / "daily" / "2026-11-01.xlsx")
    month = dg.materialize([finance_month_report], resources={"ops": ops}, partition_key="2026-11-01")
    (meta,) = [e.materialization.metadata for e in month.get_asset_materialization_events()]
    assert (meta["balances"].value, meta["balances_not_tying"].value) == (7, 0)
    assert (s.reports_dir / "monthly" / "2026-11.html").is_file()


def test_api_lists_and_serves_reports_to_finance_and_ops_only(world, tmp_path):
    build.build_day(world, "2026-11-01")
    build.build_month(world, "2026-11")

    def get(path: str, role: str = "finance") -> httpx.Response:
        token = mint_token(world.settings, role, "fiona")
        return httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)

    with api(environment(world), tmp_path / "api.err") as base:
        listed = get("/api/reports")
        assert listed.status_code == 200, listed.text
        assert [(r["kind"], r["period"], r["format"], r["url"]) for r in listed.json()][:2] == [
            ("daily", "2026-11-01", "xlsx", "/api/reports/daily/2026-11-01.xlsx"),
            ("daily", "2026-11-01", "html", "/api/reports/daily/2026-11-01.html")]
        assert all(r["size"] > 0 and r["builtAt"] for r in listed.json())
        page = get("/api/reports/daily/2026-11-01.html", role="ops")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Finance report 2026-11-01" in page.text
        workbook = get("/api/reports/monthly/2026-11.xlsx")
        assert workbook.status_code == 200 and "attachment" in workbook.headers["content-disposition"]
        assert "Balances" in openpyxl.load_workbook(BytesIO(workbook.content)).sheetnames  # sections follow
        for role in ("analyst", "merchant", "partner"):
            r = get("/api/reports", role=role)
            assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN")
            assert get("/api/reports/daily/2026-11-01.html", role=role).status_code == 403
        for path, field in (("/api/reports/weekly/2026-11-01.html", "kind: 'weekly'"),
                            ("/api/reports/daily/2026-11.html", "period: '2026-11'"),
                            ("/api/reports/daily/..html", "period: '.'"),
                            ("/api/reports/monthly/2026-11.exe", "format: 'exe'"),
                            ("/api/reports/daily/2026-11-01.html.xlsx", "period: '2026-11-01.html'")):
            r = get(path)
            assert r.status_code == 400 and r.json()["error"].startswith(field), (path, r.text)
        r = get("/api/reports/daily/2026-11-02.html")
        assert (r.status_code, r.json()["error"]) == (404, "report: daily/2026-11-02.html has not been built")
        for path in ("/api/reports/daily/../../ops.db", "/api/reports/daily/..%2F..%2Fops.db.html"):
            assert get(path).status_code == 404  # never a file outside the folder


def test_console_lists_reports_for_finance_and_ops(world):
    build.build_day(world, "2026-11-01")
    for role in ("finance", "ops"):
        with console_client(world, role) as client:
            page = client.get("/console/reports")
            assert page.status_code == 200 and 'href="/console/reports/daily/2026-11-01.xlsx"' in page.text
            html = client.get("/console/reports/daily/2026-11-01.html")
            assert html.status_code == 200 and "Finance report 2026-11-01" in html.text
    with console_client(world, "analyst") as client:
        assert client.get("/console/reports").status_code == 403
        assert client.get("/console/reports/daily/2026-11-01.html").status_code == 403


def test_sections_of_other_domains_appear_in_html_and_xlsx(world, monkeypatch):
    from ops_pipeline.reports import sections
    from ops_pipeline.reports.model import Section

    def provider(ws, first, last):
        return [Section("vouchers", f"Vouchers {first}", ("Program", "Count", "Amount"),
                        (("P<1>", 1200, (123456, "EUR")), ("P2", 0, (5, "JPY"))))]

    monkeypatch.setitem(sections.PROVIDERS, "daily", [provider])
    built = build.build_day(world, "2026-11-01")
    text = built.files[0].read_text()
    assert "<h2>Vouchers 2026-11-01</h2>" in text and 'id="vouchers"' in text
    assert '<td class="">P&lt;1&gt;</td><td class="num">1,200</td><td class="num">1,234.56</td>' in text
    assert sheet(openpyxl.load_workbook(built.files[1]), "vouchers") == [("P<1>", 1200, 1234.56), ("P2", 0, 5)]
