"""The gift-card analyst views (SQLite and PostgreSQL): `programs`, `program_assignments`, `distributors`
(wallet from the ledger) with sensitive values masked and exact DECIMAL amounts, beside `vouchers` and
`voucher_events`; empty but queryable for the internal connections that do not copy the records."""

from datetime import date
from decimal import Decimal

from ops_pipeline import analytics
from ops_pipeline.giftcards import assignments, vouchers
from ops_pipeline.ledger import adjustments
from tests import giftcard_samples as samples

PROGRAM, DISTRIBUTOR = samples.PROGRAM["program_id"], samples.DISTRIBUTOR["party_id"]


def test_programs_distributors_and_vouchers_views(ws):
    samples.seed(ws)
    assignments.assign(ws, {"party_id": DISTRIBUTOR, "program_id": PROGRAM, "discount_percent": "2.5",
                            "starts_on": "2026-01-01"}, "ops:asha")
    adjustments.adjust(ws, DISTRIBUTOR, "INR", 100_005, "UTR-1", actor="ops:asha")
    [v] = vouchers.issue(ws, PROGRAM, "500.00", 1, "487.50", "ops:asha", DISTRIBUTOR, distributed=True)
    vouchers.transition(ws, v["voucher_id"], "redeemed", "ops:asha")
    con = analytics.connect(ws, operational=True)
    con.execute(f"CREATE OR REPLACE TEMP MACRO business_today() AS DATE '{date(2026, 6, 1)}'")
    assert con.sql("SELECT program_id, restriction_state, denominations, issuance_fee_percent, "
                   "commission_rules->>'$[0].percent', parties_selling FROM programs").fetchall() == [
        (PROGRAM, "pending", [Decimal("500.0000"), Decimal("1000.0000")], Decimal("0.0000"), "3", 1)]
    assert con.sql("SELECT party_id, program_id, starts_on, ends_on, discount_percent, in_force_today "
                   "FROM program_assignments").fetchall() == [
        (DISTRIBUTOR, PROGRAM, date(2026, 1, 1), None, Decimal("2.5000"), True)]
    [(party, available, programs, bank)] = con.sql(
        "SELECT party_id, wallet_available, programs_today, bank_account FROM distributors").fetchall()
    assert (party, available, programs) == (DISTRIBUTOR, Decimal("1000.0500"), [PROGRAM])
    assert "000405012345" not in bank and bank.startswith("Giftly ")
    assert con.sql("SELECT status, face_value, price_paid FROM vouchers").fetchall() == [
        ("redeemed", Decimal("500.0000"), Decimal("487.5000"))]
    assert con.sql("SELECT event FROM voucher_events ORDER BY event_at").fetchall() == [("issued",), ("redeemed",)]
    internal = analytics.connect(ws)  # not an analyst's entry point: the records are not copied
    assert internal.sql("SELECT count(*) FROM programs").fetchall() == [(0,)]
    assert {"programs", "program_assignments", "distributors"} <= set(analytics.view_names())
