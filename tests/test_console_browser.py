"""The console in a real browser (Playwright driving the system Chromium) against `ops-pipeline api`: signing
in with a one-time link, the overview's figures, signing out."""

import pytest

from ops_pipeline.jobqueue import service
from tests.console import browser, browser_sign_in, screenshot
from tests.servers import api, environment

pytestmark = pytest.mark.slow


def test_sign_in_see_the_overview_and_sign_out(sqlite_ws, tmp_path):
    for title in ("Call the bank", "Check KYC"):
        service.create_job(sqlite_ws, actor="alice", type="manual", attributes={"title": title})
    with api(environment(sqlite_ws), tmp_path / "api.err") as base_url, browser() as chromium:
        page = chromium.new_page(base_url=base_url)
        page.goto("/console/")
        assert page.url.endswith("/console/login?next=/console/")  # no session: the sign-in page
        screenshot(page, "console-login")
        page = browser_sign_in(chromium, base_url, sqlite_ws, "ops", "alice")
        assert page.locator("header .who").inner_text().startswith("alice")
        rows = page.locator("#jobs-by-state tbody tr")
        assert rows.count() == 1 and rows.first.inner_text().split() == ["manual", "2"]
        assert page.locator("#awaiting").inner_text() == "0"
        assert page.locator("svg.chart rect").count() == 48  # 24 hours, completed and failed
        screenshot(page, "console-overview")
        page.click("text=Sign out")
        page.wait_for_url("**/console/login")
        page.goto("/console/")
        assert "/console/login" in page.url
