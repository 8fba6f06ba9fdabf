"""The gift-card pages in a real browser (Playwright driving the system Chromium) against `ops-pipeline api`:
from the navigation to the vouchers list, filtered by status, and one voucher opened with its events."""

import pytest

from ops_pipeline.giftcards import vouchers
from tests import giftcard_samples as samples
from tests.console import browser, browser_sign_in, screenshot
from tests.servers import api, environment

pytestmark = pytest.mark.slow


def test_open_a_voucher_from_the_list(sqlite_ws, tmp_path):
    samples.seed(sqlite_ws)
    made = vouchers.issue(sqlite_ws, samples.PROGRAM["program_id"], "500.00", 3, "487.50", "ops:asha",
                          samples.DISTRIBUTOR["party_id"], distributed=True)
    redeemed = sorted(v["voucher_id"] for v in made)[1]
    vouchers.transition(sqlite_ws, redeemed, "redeemed", "ops:asha", reason="spent at G-12")
    with api(environment(sqlite_ws), tmp_path / "api.err") as base_url, browser() as chromium:
        page = browser_sign_in(chromium, base_url, sqlite_ws, "finance", "fay")
        page.click("nav >> text=Gift cards")
        page.wait_for_url("**/console/giftcards/principals")
        assert page.locator("#principal-P-CAFE-01 td").nth(4).inner_text() != samples.VPA  # masked
        page.click("#giftcard-tabs >> text=Vouchers")
        assert page.locator("#vouchers tbody tr").count() == 3
        page.select_option("#status", "redeemed")
        page.click("button:has-text('Filter')")
        page.wait_for_url("**status=redeemed**")
        assert page.locator("#vouchers tbody tr").count() == 1
        screenshot(page, "giftcards-vouchers")
        page.click(f"#voucher-{redeemed} a")
        page.wait_for_url(f"**/console/giftcards/vouchers/{redeemed}")
        assert page.locator("#status").inner_text() == "redeemed"
        assert page.locator("#price-paid").inner_text() == "487.50 INR"
        events = page.locator("#events tbody tr")
        assert [events.nth(i).locator("td").nth(1).inner_text() for i in range(events.count())] == [
            "issued", "redeemed"]
        assert "spent at G-12" in events.nth(1).inner_text()
        screenshot(page, "giftcards-voucher")
