"""The console's fund-out pages on SQLite and PostgreSQL, over batches run by the domain against the bank
simulator (real HTTP): batches by slot with counts, exact amounts per currency (INR, JPY, BHD), failure rate
and missed slots; a batch's payouts (failed only); a business's configuration and payouts; roles, 404, 400."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from ops_pipeline.fundout import batch, config, queries
from ops_pipeline.fundout.bank import Bank
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.partners.clients import HttpOptions
from tests.console import console_client, next_link, text_of

SLOT = datetime(2026, 11, 21, 22, tzinfo=UTC)


@pytest.fixture
def ws(bank_ws):
    return bank_ws


def run(ws, sim, hours_later=None):
    """A slot paying B1 1,234.56 INR, B2 5,000 JPY, B3 1,234.567 BHD, failing B4 (blocked: 100.00 EUR) and
    skipping B5 (under its minimum); B6 is weekly, not due; with `hours_later`, the run after that gap (older slots missed)."""
    post_entries(ws, [Entry("ADJUSTMENT", f"fund-{b}", b, c, m, "adjustment") for b, c, m in (
        ("B1", "INR", 123456), ("B2", "JPY", 5000), ("B3", "BHD", 1234567), ("B4", "EUR", 10000),
        ("B5", "EUR", 500))], "test-funding")
    for business in ("B1", "B2", "B3", "B4"):
        config.create_config(ws, business, {"freqType": "H", "enabled": True}, "ops:test")
    config.create_config(ws, "B5", {"freqType": "H", "minimumBalance": "10.005", "enabled": True}, "ops:test")
    config.create_config(ws, "B6", {"freqType": "W", "day": 1, "hour": 22, "minimumBalance": "10.005",
                                    "enabled": True, "timezone": "UTC"}, "ops:test")
    sim.block("B4")
    bank = Bank(ws.settings, HttpOptions(timeout=5, retries=1, backoff=0.01))
    try:
        [first] = batch.run_due(ws, "scheduler", now=SLOT, bank=bank)
        later = batch.run_due(ws, "scheduler", now=SLOT + timedelta(hours=hours_later), bank=bank) \
            if hours_later else []
    finally:
        bank.close()
    return first, later


def row_text(html, row_id):
    return text_of(re.search(rf'<tr id="{row_id}"[^>]*>(.*?)</tr>', html, re.S).group(1))


def test_batches_by_slot_with_counts_exact_amounts_failure_rate_and_missed_slots(ws, sim):
    first, later = run(ws, sim, hours_later=30)
    missed = batch.list_batches(ws, status="missed").batches
    assert len(missed) == 5 and len(later) == 25  # 23:00 .. 03:00: more than 24 h old when batches resumed
    with console_client(ws, role="finance", sub="fiona") as client:
        html = client.get("/console/fundout").text
        # slot, status, due, paid, failed, skipped, pending, failure rate, paid amounts, failed amounts, by
        assert row_text(html, f"batch-{first.id}") == (
            "2026-11-21 22:00 done 5 3 1 1 0 25.0% 1,234.567 BHD 1,234.56 INR 5,000 JPY 100.00 EUR scheduler")
        assert "missed: never paid" in row_text(html, f"batch-{missed[0].id}")
        assert f'<tr id="batch-{missed[0].id}" class="bad">' in html
        ids = re.findall(r'<tr id="batch-(\d+)"', html)
        slots = [b.slot for b in batch.list_batches(ws, limit=50).batches]
        assert len(ids) == 31 and slots == sorted(slots, reverse=True)  # newest slot first
        only = client.get("/console/fundout?status=missed").text
        assert sorted(re.findall(r'<tr id="batch-(\d+)"', only)) == sorted(str(b.id) for b in missed)
        r = client.get("/console/fundout?status=nope")
        assert r.status_code == 400 and "status" in text_of(r.text)
        assert client.get("/console/fundout?after=0").status_code == 400


def test_the_batch_list_pages_by_cursor(ws, sim):
    run(ws, sim, hours_later=60)  # 1 + 35 missed + 25 run = 61 batches
    with console_client(ws) as client:
        html = client.get("/console/fundout").text
        first_page = re.findall(r'<tr id="batch-(\d+)"', html)
        link = next_link(html)
        second = client.get(link).text
        second_page = re.findall(r'<tr id="batch-(\d+)"', second)
    assert len(first_page) == 50 and len(second_page) == 11 and not set(first_page) & set(second_page)
    assert 'rel="next"' not in second


def test_a_batch_shows_its_payouts_and_its_failures(ws, sim):
    first, _ = run(ws, sim)
    payouts = {p.business_id: p for p in queries.batch_payouts(ws, first.id).payouts}
    with console_client(ws) as client:
        html = client.get(f"/console/fundout/batches/{first.id}").text
        summary = text_of(html.split('id="summary"')[1].split("</div>\n</div>")[0])
        assert "5 due 3 paid 1,234.567 BHD 1,234.56 INR 5,000 JPY 1 failed (25.0%) 100.00 EUR 1 skipped" in summary
        b1 = payouts["B1"]
        assert row_text(html, f"payout-{b1.id}").startswith(f"B1 1,234.56 INR posted {b1.bank_payout_id}")
        assert row_text(html, f"payout-{payouts['B2'].id}").startswith("B2 5,000 JPY posted")
        assert row_text(html, f"payout-{payouts['B3'].id}").startswith("B3 1,234.567 BHD posted")
        failed = client.get(f"/console/fundout/batches/{first.id}?failed=true").text
        assert re.findall(r'<tr id="payout-([^"]+)"', failed) == [payouts["B4"].id]
        assert "B4 100.00 EUR failed" in row_text(failed, f"payout-{payouts['B4'].id}")
        assert "account of 'B4' is blocked" in row_text(failed, f"payout-{payouts['B4'].id}")
        assert client.get("/console/fundout/batches/999999").status_code == 404
        assert client.get("/console/fundout/batches/0").status_code == 400
        assert client.get(f"/console/fundout/batches/{first.id}?after=" + "x" * 41).status_code == 400
    page = queries.batch_payouts(ws, first.id, limit=3)
    rest = queries.batch_payouts(ws, first.id, after=page.next_after, limit=3)
    assert [p.id for p in page.payouts + rest.payouts] == sorted(p.id for p in payouts.values())
    assert rest.next_after is None


def test_a_business_shows_its_configuration_and_payouts(ws, sim):
    run(ws, sim, hours_later=1)  # B4 still blocked: its payout fails again in the next slot
    with console_client(ws, role="finance", sub="fiona") as client:
        r = client.get("/console/fundout/businesses?id=B6")
        assert r.status_code == 303 and r.headers["location"] == "/console/fundout/businesses/B6"
        page = text_of(client.get(r.headers["location"]).text)
        assert "Schedule weekly on Monday at 22:00 (UTC)" in page and "Minimum balance 10.005" in page
        assert "No payout." in page
        html = client.get("/console/fundout/businesses/B4").text
        rows = re.findall(r'<tr id="payout-([^"]+)"', html)
        assert [row_text(html, f"payout-{i}")[:34] for i in rows] == [
            "2026-11-21 23:00 100.00 EUR failed", "2026-11-21 22:00 100.00 EUR failed"]  # newest first
        assert client.get("/console/fundout/businesses/nobody").status_code == 404
        assert client.get("/console/fundout/businesses/B4?after=nope").status_code == 400
    everything = queries.business(ws, "B4").payouts.payouts
    one = queries.business(ws, "B4", limit=1)
    two = queries.business(ws, "B4", after=one.payouts.next_after, limit=1)
    assert [p.id for p in one.payouts.payouts + two.payouts.payouts] == [p.id for p in everything]
    assert everything[0].created_at >= everything[1].created_at


def test_analysts_do_not_read_fund_out(ws, sim):
    with console_client(ws, role="analyst", sub="ann") as client:
        for path in ("/console/fundout", "/console/fundout/batches/1", "/console/fundout/businesses/B1"):
            r = client.get(path)
            assert r.status_code == 403 and "does not read fund-out" in r.text, path
