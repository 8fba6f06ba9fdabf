"""The finance reports' HTML in a real browser (Playwright driving the system Chromium), opened as a file:
self-contained (nothing fetched), numbers visible, every chart image loaded."""

import pytest

from ops_pipeline.reports import build
from tests.console import browser, screenshot
from tests.test_reports import make_world

pytestmark = pytest.mark.slow


def test_report_html_shows_numbers_and_charts_offline(sqlite_ws, tmp_path):
    world = make_world(sqlite_ws, tmp_path)
    day = build.build_day(world, "2026-11-01").files[0]
    month = build.build_month(world, "2026-11").files[0]
    with browser() as chromium:
        page = chromium.new_page()
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(day.as_uri())
        assert page.locator("h1").inner_text() == "Finance report 2026-11-01"
        row = page.locator("#summary tr", has_text="matched_with_difference")
        assert row.inner_text().split() == ["settlement", "EUR", "matched_with_difference", "1", "20.00", "19.50",
                                            "0.50"]
        assert page.locator("#aging tbody tr").inner_text().split() == ["0-1", "EUR", "3", "80.00"]
        assert page.locator("#breaks tbody tr").count() == 5
        assert page.locator("#differences tbody tr").inner_text().split()[:6] == [
            "settlement", "2026-11-01", "EUR", "20.00", "19.50", "0.50"]
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
        assert widths == [640, 640]
        screenshot(page, "report-daily")
        page.goto(month.as_uri())
        cells = page.locator("#movements tr", has_text="confirmed").first.inner_text().split()
        assert cells == ["M1", "EUR", "confirmed", "0.67", "160.00", "-5.84", "-7.00", "-50.00", "1.23", "99.06",
                         "99.06", "yes"]
        assert page.locator("#movements .bad").count() == 0
        assert page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)") == [640]
        screenshot(page, "report-monthly")
        assert all(u.startswith(("file:", "data:")) for u in requests), requests
