"""The bank simulator's statement of one day: that day's payouts, reversals and charges only, loading back
through the real intake in both formats (so a daily load never repeats an entry)."""

from datetime import date, timedelta

import httpx
import pytest

from ops_pipeline.partners.app import serving
from ops_pipeline.partners.simulator import Simulator
from ops_pipeline.statements.intake import load_statement
from tests.test_statements import rows


@pytest.mark.parametrize("fmt", ["mt940", "camt053"])
def test_a_day_statement_holds_that_days_debits_reversals_and_charges(ws, fmt):
    sim = Simulator()
    today = date.today()
    items = [{"business_id": "b1", "reference": "pay-1", "amount": "12.30", "currency": "EUR"},
             {"business_id": "b2", "reference": "pay-2", "amount": "7.005", "currency": "BHD"}]
    with serving(sim) as url:
        paid = httpx.post(f"{url}/payouts/batch", json={"items": items}).json()["items"]
        sim.reverse("pay-2", reason="AC04")
        sim.charge("fee-77", "0.45", "EUR")
        with pytest.raises(ValueError, match="no paid payout"):
            sim.reverse("pay-2")  # already returned
        reply = httpx.get(f"{url}/statements/{fmt}/{today.isoformat()}")
        yesterday = httpx.get(f"{url}/statements/{fmt}/{today - timedelta(days=1)}").json()["content"]
        assert httpx.get(f"{url}/statements/{fmt}/not-a-day").status_code == 422
    assert reply.status_code == 200 and reply.json()["content"] == sim.statement(fmt, day=today)
    r = load_statement(ws, reply.json()["content"].encode(), f"day.{fmt}", "tester")
    assert r.entries == 4
    got = sorted((row[6], row[5], row[7], row[8], row[9]) for row in rows(ws))
    assert got == sorted([("EUR", 1230, "D", "pay-1", paid[0]["payout_id"]),
                          ("BHD", 7005, "D", "pay-2", paid[1]["payout_id"]),
                          ("BHD", 7005, "RD", "pay-2", paid[1]["payout_id"]),
                          ("EUR", 45, "D", "fee-77", "CHG-000001")])
    assert all(row[3] == today for row in rows(ws))
    assert ":61:" not in yesterday and "<Ntry>" not in yesterday  # nothing was booked yesterday
