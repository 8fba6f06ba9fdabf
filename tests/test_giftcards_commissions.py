"""Commission rules and their arithmetic with exact values (percent half-even, flat, tiers in both modes, caps,
dates and precedence); the daily `commission_lines` partitions; monthly invoices numbered without gaps
(also under two threads on PostgreSQL), immutable, corrected by credit notes."""

import threading
from datetime import date
from types import SimpleNamespace

import openpyxl
import polars as pl
import pytest
from sqlalchemy import select

from ops_pipeline.db.schema import gc_invoices
from ops_pipeline.errors import Conflict, InvalidInput
from ops_pipeline.giftcards import assignments, commission_lines, commissions, invoice_files, invoices
from ops_pipeline.giftcards.model import CommissionRule
from tests.gcfin_samples import sell
from tests.giftcard_samples import seed

PRIOR = pl.DataFrame(
    schema={
        "party_id": pl.String,
        "program_id": pl.String,
        "rule_key": pl.String,
        "sales": pl.Int64,
        "face_value_minor": pl.Int64,
        "commission_minor": pl.Int64,
    }
)


def lines_for(rule: dict, faces: list[int], prior: pl.DataFrame = PRIOR) -> pl.DataFrame:
    terms = commissions.compile_rule(CommissionRule.model_validate(rule), "INR", "program:P:0")
    frames = commissions.terms_frames([("D", "P", date(2026, 11, 1), date(2026, 11, 30), terms)])
    n = len(faces)
    sales = pl.DataFrame(
        {
            "sale_id": [f"s{i}" for i in range(n)],
            "voucher_id": [f"v{i:03d}" for i in range(n)],
            "party_id": ["D"] * n,
            "program_id": ["P"] * n,
            "currency": ["INR"] * n,
            "face_value_minor": faces,
            "price_paid_minor": [f - 100 for f in faces],
            "sold_at": [i * 1_000_000 for i in range(n)],
            "sale_date": [date(2026, 11, 2)] * n,
        }
    ).with_columns(pl.col("sold_at").cast(pl.Datetime("us", "UTC")))
    return commissions.compute(sales, frames, prior).sort("sold_at")


def month_totals(lines: pl.LazyFrame) -> pl.DataFrame:
    """What `commission_lines.month_totals` gives for lines in memory."""
    return (
        lines.group_by("party_id", "program_id", "currency", "rule_key", "face_value_minor")
        .agg(pl.len().alias("sales"), pl.col("terms").first(), pl.col("commission_minor").sum())
        .collect()
    )


def test_percent_rounds_half_even_per_sale_and_flat_and_voucher_cap():
    # 2.5% of 1010 = 25.25 -> 25; of 1030 = 25.75 -> 26; 1.5% of 100 = 1.5 -> 2; 1.5% of 300 = 4.5 -> 4
    assert lines_for({"kind": "percent", "percent": "2.5"}, [1010, 1030])["commission_minor"].to_list() == [
        25,
        26,
    ]
    assert lines_for({"kind": "percent", "percent": "1.5"}, [100, 300])["commission_minor"].to_list() == [
        2,
        4,
    ]
    flat = lines_for({"kind": "flat", "flat_amount": "3.25", "cap_per_voucher": "3"}, [50000, 50000])
    assert flat["commission_minor"].to_list() == [300, 300]
    assert flat["discount_minor"].to_list() == [100, 100]


def test_monthly_cap_counts_the_earlier_days():
    rule = {"kind": "percent", "percent": "10", "cap_per_month": "25.00"}  # 2500 minor
    prior = pl.DataFrame(
        {
            "party_id": ["D"],
            "program_id": ["P"],
            "rule_key": ["program:P:0"],
            "sales": [2],
            "face_value_minor": [20000],
            "commission_minor": [2000],
        }
    )
    assert lines_for(rule, [1000, 10000, 1000], prior)["commission_minor"].to_list() == [100, 400, 0]


def test_tiers_marginal_and_whole_month_with_adjustment():
    tiers = [
        {"from_volume": 0, "percent": "1"},
        {"from_volume": 3, "percent": "2"},
        {"from_volume": 4, "flat_amount": "5"},
    ]
    marginal = lines_for({"kind": "tiered", "tiers": tiers}, [10000] * 5)
    assert marginal["commission_minor"].to_list() == [100, 100, 100, 200, 500]
    assert commissions.month_adjustments(month_totals(marginal.lazy())).is_empty()
    whole = lines_for({"kind": "tiered", "tiers": tiers, "tier_mode": "whole_month"}, [10000] * 5)
    assert whole["commission_minor"].sum() == 1000
    adj = commissions.month_adjustments(month_totals(whole.lazy()))
    assert adj.select("rule_key", "adjustment_minor").rows() == [("program:P:0", 5 * 500 - 1000)]
    # by face value (major units), capped per month: 300.00 reached -> 3% on all, 10.00 cap
    by_value = {
        "kind": "tiered",
        "tier_basis": "face_value",
        "tier_mode": "whole_month",
        "cap_per_month": "10",
        "tiers": [{"from_volume": 0, "percent": "1"}, {"from_volume": "300.00", "percent": "3"}],
    }
    lines = lines_for(by_value, [10000, 10000, 10000, 10000])
    assert lines["commission_minor"].to_list() == [100, 100, 100, 300]
    assert commissions.month_adjustments(month_totals(lines.lazy()))["adjustment_minor"].to_list() == [
        1000 - 600
    ]


def test_terms_precedence_and_dates():
    program = SimpleNamespace(
        program_id="P",
        currency="INR",
        details={
            "commission_rules": [
                {"kind": "percent", "percent": "1", "ends_on": "2026-11-30"},
                {"kind": "flat", "flat_amount": "2"},
            ]
        },
    )
    assignment = SimpleNamespace(
        id=7,
        party_id="D",
        program_id="P",
        starts_on=date(2026, 12, 1),
        ends_on=None,
        details={
            "commission_percent": "1.25",
            "commission_rules": [{"kind": "flat", "flat_amount": "9", "starts_on": "2026-12-15"}],
        },
    )
    book = commissions.Book([program], [assignment])
    assert book.terms("D", "P", date(2026, 11, 30)).rule_key == "program:P:0"  # before the assignment
    assert book.terms("E", "P", date(2026, 12, 1)).tiers == ((0, 0, 200),)
    on_1st = book.terms("D", "P", date(2026, 12, 1))
    assert (on_1st.rule_key, on_1st.tiers) == ("assignment:7:percent", ((0, 12500, 0),))
    assert book.terms("D", "P", date(2026, 12, 15)).rule_key == "assignment:7:0"
    assert book.terms("D", "P", date(2026, 12, 16)) is book.terms("D", "P", date(2026, 12, 15))
    assert book.terms("D", "Q", date(2026, 12, 1)) is None
    runs = book.runs("D", "P", date(2026, 11, 29), date(2026, 12, 31))
    assert [(a.day, b.day, t.rule_key) for a, b, t in runs] == [
        (29, 30, "program:P:0"),
        (1, 14, "assignment:7:percent"),
        (15, 31, "assignment:7:0"),
    ]
    with pytest.raises(ValueError, match="tiers start at from_volume 0"):
        CommissionRule.model_validate({"kind": "tiered", "tiers": [{"from_volume": 1, "percent": "1"}]})


@pytest.fixture
def gws(ws):
    seed(ws)
    assignments.assign(
        ws,
        {
            "party_id": "D-GIFTLY",
            "program_id": "GC-ORION-FESTIVE",
            "starts_on": "2026-10-01",
            "commission_rules": [
                {
                    "kind": "tiered",
                    "tier_mode": "whole_month",
                    "tiers": [{"from_volume": 0, "percent": "1"}, {"from_volume": 3, "percent": "2"}],
                }
            ],
        },
        "ops:asha",
    )
    return ws


def test_daily_lines_overwrite_their_partition_and_the_month_is_invoiced_once(gws):
    d1, d2 = date(2026, 11, 3), date(2026, 11, 4)
    sell(gws, d1, "D-GIFTLY", "GC-ORION-FESTIVE", [50000, 50000], [49500, 49500])
    sell(gws, d2, "D-GIFTLY", "GC-ORION-FESTIVE", [100000, 100000])
    assert commission_lines.compute_day(gws, d1).commission_minor == 1000
    day2 = commission_lines.compute_day(gws, d2)
    assert (day2.sales, day2.commission_minor) == (2, 1000 + 2000)  # the 3rd sale of the month is in tier 2
    assert commission_lines.compute_day(gws, d2) == day2  # a re-run replaces the partition
    assert len(commission_lines.month_lines(gws, d1)) == 4
    assert commission_lines.unmatched_sales(gws, d2) == 0
    sell(gws, d2, "D-GIFTLY", "GC-ORION-FESTIVE", [100000], prefix="LATE")
    assert commission_lines.unmatched_sales(gws, d2) == 1

    with pytest.raises(InvalidInput, match="month: 2026-11 is not over on 2026-11-30"):
        invoices.issue_month(gws, d1, "ops:asha", on=date(2026, 11, 30))
    [number] = invoices.issue_month(gws, d1, "ops:asha", on=date(2026, 12, 1))
    assert number == "INV-2026-000001"
    assert invoices.issue_month(gws, d1, "ops:asha", on=date(2026, 12, 2)) == []
    inv = invoices.get(gws, number)
    # every sale at 2% (the month reached tier 2): 2*1000 + 2*2000 = 6000; the lines earned 4000
    assert (inv.sales, inv.commission_minor, inv.adjustment_minor, inv.total_minor) == (4, 4000, 2000, 6000)
    assert (inv.discount_minor, inv.due_on, inv.status) == (1000, date(2026, 12, 31), "open")

    with pytest.raises(Conflict, match="more than the 6000 minor units left"):
        invoices.credit_note(gws, number, "60.01", "over", "finance:li")
    note = invoices.credit_note(gws, number, "15.00", "disputed sale", "finance:li", on=date(2026, 12, 5))
    assert (note.number, note.total_minor, note.corrects) == ("CN-2026-000001", -1500, number)
    after = invoices.get(gws, number)
    assert (after.total_minor, after.credited_minor, after.outstanding_minor) == (6000, 1500, 4500)
    with gws.engine.connect() as conn:
        assert (
            conn.execute(select(gc_invoices.c.total_minor).where(gc_invoices.c.number == number)).scalar()
            == 6000
        )

    assert invoice_files.write_month(gws, d1) == 2
    files = invoice_files.paths(gws, inv)
    assert files["html"].parent == gws.home / "invoices" / "2026-11"
    page = files["html"].read_text()
    assert "INV-2026-000001" in page and "Giftly Distribution LLP" in page and "60.00" in page
    assert files["pdf"].read_bytes().startswith(b"%PDF")
    book = openpyxl.load_workbook(files["xlsx"])
    assert [c.value for c in book["Invoice"][4]] == ["GC-ORION-FESTIVE", 4, 3000, 10, 40, 20]
    assert [[c.value for c in r] for r in book["Days"].iter_rows(min_row=2)] == [
        ["2026-11-03", 2, 1000, 10, 10],
        ["2026-11-04", 2, 2000, 0, 30],
    ]
    mtime = files["pdf"].stat().st_mtime_ns
    assert invoice_files.write_month(gws, d1) == 0 and files["pdf"].stat().st_mtime_ns == mtime


def test_numbers_are_gapless_under_two_threads(pg_url, tmp_path):
    from ops_pipeline.workspace import Workspace
    from tests.conftest import make_settings

    ws = Workspace(make_settings(tmp_path / "home", pg_url))
    ws.init()
    got: list[str] = []

    def issue(n: int) -> None:
        for _ in range(n):
            with ws.engine.begin() as conn:
                got.append(invoices.next_number(conn, "invoice", 2027))

    def spoil() -> None:  # a transaction that takes a number and rolls back gives it back
        with pytest.raises(RuntimeError), ws.engine.begin() as conn:
            invoices.next_number(conn, "invoice", 2027)
            raise RuntimeError

    threads = [threading.Thread(target=issue, args=(25,)) for _ in range(2)] + [
        threading.Thread(target=spoil)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [f"INV-2027-{n:06d}" for n in range(1, 51)]
    ws.close()
