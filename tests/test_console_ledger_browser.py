"""In a real browser against `ops-pipeline api`: reprocess a quarantined row once its cause is fixed, read the
merchant's balances, and watch a new alert arrive on the alerts page without a reload."""

import pytest

from ops_pipeline.ledger import ingest, merchants
from ops_pipeline.notify import Notification, enqueue
from ops_pipeline.notify.queries import newest_id
from tests.console import browser, browser_sign_in, screenshot
from tests.factories import MERCHANTS, op, write_merchants, write_ops
from tests.servers import api, environment


@pytest.mark.slow
def test_reprocess_a_quarantined_row_and_see_a_new_alert_live(sqlite_ws, tmp_path):
    ws = sqlite_ws
    rows = [op("ok", "10.00"), op("late", "1234.56", psp_id="psp9")]
    assert ingest.ingest_file(ws, write_ops(tmp_path / "co.csv", rows), "confirmed").quarantined == 1
    with api(environment(ws), tmp_path / "api.err") as base, browser() as chromium:
        page = browser_sign_in(chromium, base, ws, "ops", "alice")
        page.on("dialog", lambda dialog: dialog.accept())  # "Reprocess every open quarantined row?"

        page.goto("/console/ledger/quarantine")
        assert page.inner_text("#quarantine-reasons").split() == ["unknown_merchant", "1", "Total", "1"]
        assert "psp9" in page.inner_text("#quarantine-rows")
        screenshot(page, "ledger-quarantine")
        merchants.load(ws, write_merchants(tmp_path / "m2.csv", [*MERCHANTS, ("psp9", "lm1", "s1", "EUR", "M9",
                                                                             "", "0", "0")]))
        page.click("form.reprocess button")
        page.wait_for_selector(".flash")
        assert "1 resolved, 0 still quarantined" in page.inner_text(".flash")
        assert page.is_visible("#quarantine-empty")
        page.select_option("#status", "resolved")
        page.click("form.filters button")
        page.wait_for_url("**status=resolved**")
        assert "late" in page.inner_text("#quarantine-rows") and "resolved" in page.inner_text("#quarantine-rows")

        page.goto("/console/ledger")
        page.fill("#merchant", "M9")
        page.click("#merchant-search button")
        page.wait_for_url("**/console/ledger/merchants/M9")
        assert page.inner_text("#balances td.confirmed") == "1,234.56 EUR"
        screenshot(page, "ledger-merchant")

        with ws.engine.begin() as conn:
            enqueue(conn, [Notification("ticket.opened", "Ticket 1: job 7 (report) failed", {"source": "job"})])
        page.goto("/console/alerts")
        assert page.is_hidden("#alerts-badge")
        assert "Failed job" in page.inner_text("#alerts tbody")
        with ws.engine.begin() as conn:
            enqueue(conn, [Notification("ops.alert", "Fund-out: 2 of 5 payouts failed",
                                        {"alert": "fundout.failure_rate"})])
        alert_id = newest_id(ws)
        page.wait_for_selector(f"#alerts tbody tr#alert-{alert_id}", timeout=15000)
        assert page.inner_text("#alerts-badge") == "1"
        assert "Fund-out failure rate" in page.inner_text(f"#alert-{alert_id}")
        assert page.locator("#alerts tbody tr").first.get_attribute("id") == f"alert-{alert_id}"
        assert page.locator("#alerts tbody tr").count() == 2
        screenshot(page, "alerts")
        page.context.close()
