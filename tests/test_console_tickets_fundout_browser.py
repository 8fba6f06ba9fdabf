"""The tickets and fund-out pages in a real browser (Playwright driving the system Chromium) against
`ops-pipeline api`: marking an agent away moves its tickets to the other agent on the page; a fund-out batch
opened from the list shows its payouts, and a payout's business its configuration."""

import pytest

from ops_pipeline.fundout import config
from ops_pipeline.fundout.batch import run_due
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.tickets import agents, groups
from ops_pipeline.tickets import tickets as t
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings
from tests.console import browser, browser_sign_in, screenshot
from tests.servers import api, environment
from tests.test_console_fundout import SLOT

pytestmark = pytest.mark.slow


@pytest.fixture
def ws(tmp_path, sim_url):
    workspace = Workspace(make_settings(tmp_path / "home", OPS_BANK_URL=sim_url))
    workspace.init()
    yield workspace
    workspace.close()


def test_mark_an_agent_away_and_open_a_fund_out_batch(ws, sim, tmp_path):
    kyc = groups.create_group(ws, "lead", "KYC")["group_id"]
    for agent_id in ("bob", "carol"):
        agents.create_agent(ws, "lead", agent_id, agent_id.title(), f"{agent_id}@ops.example", [kyc])
    made = [t.create_ticket(ws, "lead", group_id=kyc, user_id=f"U{i}") for i in range(4)]
    bobs = [m["id"] for m in made if m["agent_id"] == "bob"]
    post_entries(ws, [Entry("ADJUSTMENT", "fund-B1", "B1", "INR", 123456, "adjustment"),
                      Entry("ADJUSTMENT", "fund-B2", "B2", "EUR", 10000, "adjustment")], "test-funding")
    for business in ("B1", "B2"):
        config.create_config(ws, business, {"freqType": "H", "enabled": True}, "ops:test")
    sim.block("B2")
    [report] = run_due(ws, "scheduler", now=SLOT)
    with api(environment(ws), tmp_path / "api.err") as base_url, browser() as chromium:
        page = browser_sign_in(chromium, base_url, ws, "ops", "olga")
        page.on("dialog", lambda dialog: dialog.accept())  # "Mark Bob away?"
        page.click("nav >> text=Tickets")
        for ticket_id in bobs:
            assert page.locator(f"#ticket-{ticket_id} .agent").inner_text() == "Bob"
        assert page.locator("#agent-bob .status").inner_text() == "available"
        screenshot(page, "tickets-queue")

        page.click("#agent-bob button:has-text('Mark away')")
        page.wait_for_selector(".flash")
        flash = page.locator(".flash").inner_text()
        assert flash.startswith("Bob is away. 2 tickets moved: ")
        for ticket_id in bobs:
            assert f"#{ticket_id} → Carol" in flash
            assert page.locator(f"#ticket-{ticket_id} .agent").inner_text() == "Carol"
        assert page.locator("#agent-bob .status").inner_text() == "away"
        assert page.locator("#agent-carol .open").inner_text() == "4"
        screenshot(page, "tickets-away")

        page.click("nav >> text=Fund-out")
        row = page.locator(f"#batch-{report.id}")
        assert "50.0%" in row.inner_text() and "1,234.56 INR" in row.inner_text()
        screenshot(page, "fundout-batches")
        row.locator("a").first.click()
        page.wait_for_url(f"**/console/fundout/batches/{report.id}")
        rows = page.locator("#payouts tbody tr")
        assert rows.count() == 2
        texts = sorted(rows.nth(i).inner_text() for i in range(2))
        assert texts[0].split("\t")[:3] == ["B1", "1,234.56 INR", "posted"]
        assert texts[1].split("\t")[:3] == ["B2", "100.00 EUR", "failed"] and "is blocked" in texts[1]
        screenshot(page, "fundout-batch")
        page.click("#payouts >> text=B1")
        page.wait_for_url("**/console/fundout/businesses/B1")
        assert page.locator("#schedule").inner_text().startswith("hourly")
        screenshot(page, "fundout-business")
