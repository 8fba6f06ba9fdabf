"""Gift-card records on SQLite and PostgreSQL: create, update and list each kind; encryption at rest; the
audit trail with masked values before and after; versions; assignments with dates; voucher transitions
and their events in the daily partitioned Delta table."""

import json
from datetime import date

import pytest
from sqlalchemy import select

from ops_pipeline import analytics, audit
from ops_pipeline.db.schema import gc_parties, gc_principals, gc_vouchers
from ops_pipeline.errors import Conflict, InvalidInput, NotFound
from ops_pipeline.giftcards import assignments, events, files, kinds, records, vouchers
from ops_pipeline.ledger import ingest
from tests.factories import op, write_ops
from tests.giftcard_samples import ACCOUNT, DISTRIBUTOR, PROGRAM, TENANT, VPA, seed


@pytest.fixture
def gws(ws):
    seed(ws)
    return ws


def history(ws, entity_type, entity_id):
    with ws.engine.connect() as conn:
        return audit.history(conn, entity_type, entity_id)


def test_principal_is_encrypted_at_rest_and_masked_in_views(gws):
    with gws.engine.connect() as conn:
        raw = conn.execute(select(gc_principals.c.details).where(gc_principals.c.principal_id == "P-CAFE-01")
                           ).scalar_one()
    text = json.dumps(raw)
    for secret in (VPA, ACCOUNT, "HDFC0001234", "asha@beanthere.example", "+919812345678"):
        assert secret not in text
    assert raw["upi_vpas"][0]["enc"] and raw["upi_vpas"][0]["masked"] == "be***@okhdfc"
    shown = records.get(gws, kinds.PRINCIPALS, "P-CAFE-01")
    assert shown["upi_vpas"] == ["be***@okhdfc", "be***@ybl"]
    assert shown["bank_account"] == {"account_holder": "Bean There Cafe Pvt Ltd",
                                     "account_number": "**********6789", "ifsc": "HDFC*******"}
    assert shown["mall_id"] == "MALL-ORION" and shown["terms"]["commission_percent"] == "2.5"
    assert shown["version"] == 1 and shown["status"] == "active"
    created = history(gws, "gc_principal", "P-CAFE-01")
    assert created[0]["action"] == "create" and created[0]["actor"] == "ops:asha"
    assert created[0]["after"]["upi_vpas"] == ["be***@okhdfc", "be***@ybl"]
    assert VPA not in json.dumps(created[0]["after"])


def test_update_keeps_secrets_sealed_audits_before_after_and_counts_versions(gws):
    updated = records.update_record(gws, kinds.PRINCIPALS, "P-CAFE-01",
                                    {"upi_vpas": ["cafe.new@okicici"], "unit": "G-14"}, "ops:ravi",
                                    expected_version=1, reason="moved unit")
    assert updated["upi_vpas"] == ["ca***@okicici"] and updated["unit"] == "G-14"
    assert updated["version"] == 2 and updated["updated_by"] == "ops:ravi"
    assert updated["bank_account"]["account_number"] == "**********6789"  # untouched, still sealed
    with gws.engine.connect() as conn:
        raw = conn.execute(select(gc_principals.c.details)).all()
    assert "cafe.new@okicici" not in json.dumps([r.details for r in raw])
    change = history(gws, "gc_principal", "P-CAFE-01")[-1]
    assert change["action"] == "update" and change["actor"] == "ops:ravi" and change["reason"] == "moved unit"
    assert change["before"] == {"upi_vpas": ["be***@okhdfc", "be***@ybl"], "unit": "G-12"}
    assert change["after"] == {"upi_vpas": ["ca***@okicici"], "unit": "G-14"}
    with pytest.raises(Conflict, match="version: principal 'P-CAFE-01' is at version 2, not 1"):
        records.update_record(gws, kinds.PRINCIPALS, "P-CAFE-01", {"unit": "G-15"}, "ops:ravi",
                              expected_version=1)
    same = records.update_record(gws, kinds.PRINCIPALS, "P-CAFE-01", {"unit": "G-14"}, "ops:ravi")
    assert same["version"] == 2  # nothing changed: no new version, no audit record
    assert len(history(gws, "gc_principal", "P-CAFE-01")) == 2
    off = records.update_record(gws, kinds.PRINCIPALS, "P-CAFE-01", {"status": "inactive"}, "ops:ravi")
    assert off["status"] == "inactive" and history(gws, "gc_principal", "P-CAFE-01")[-1]["after"] == {
        "status": "inactive"}


def test_bad_records_are_refused_naming_the_field(gws):
    with pytest.raises(InvalidInput, match=r"principal\.upi_vpas\[0\]: 'not-a-vpa' is not a valid UPI VPA"):
        records.create(gws, kinds.PRINCIPALS, {**TENANT, "principal_id": "P-2", "upi_vpas": ["not-a-vpa"]}, "o")
    with pytest.raises(InvalidInput, match="mall_id: no principal 'MALL-NONE'"):
        records.create(gws, kinds.PRINCIPALS, {**TENANT, "principal_id": "P-2", "mall_id": "MALL-NONE"}, "o")
    with pytest.raises(InvalidInput, match="mall_id: principal 'P-CAFE-01' is not a mall"):
        records.create(gws, kinds.PRINCIPALS, {**TENANT, "principal_id": "P-2", "mall_id": "P-CAFE-01"}, "o")
    with pytest.raises(InvalidInput, match=r"principal_ids\[1\]: no principal 'P-NONE'"):
        records.create(gws, kinds.PROGRAMS, {**PROGRAM, "program_id": "GC-2",
                                             "principal_ids": ["P-CAFE-01", "P-NONE"]}, "o")
    with pytest.raises(Conflict, match="principal_id: principal 'P-CAFE-01' exists already"):
        records.create(gws, kinds.PRINCIPALS, TENANT, "o")
    with pytest.raises(Conflict, match="wallet_account_id: 'D-GIFTLY' is the wallet of party 'D-GIFTLY'"):
        records.create(gws, kinds.PARTIES, {**DISTRIBUTOR, "party_id": "D-2", "wallet_account_id": "D-GIFTLY"},
                       "o")
    with pytest.raises(NotFound, match="program_id: no program 'GC-NONE'"):
        records.get(gws, kinds.PROGRAMS, "GC-NONE")
    with pytest.raises(InvalidInput, match="program_id: the key of a program cannot change"):
        records.update_record(gws, kinds.PROGRAMS, "GC-ORION-FESTIVE", {"program_id": "X"}, "o")


def test_program_restriction_state_and_listing_with_cursor(gws, tmp_path):
    program = records.get(gws, kinds.PROGRAMS, "GC-ORION-FESTIVE")
    assert program["restriction_state"] == "pending" and program["pricing"]["denominations"] == ["500.00",
                                                                                                "1000.00"]
    pushed = kinds.set_restriction(gws, "GC-ORION-FESTIVE", "pushed", "ops:asha", "bank ack 42")
    assert pushed["restriction_state"] == "pushed" and pushed["restriction_detail"] == "bank ack 42"
    changed = kinds.update_program(gws, "GC-ORION-FESTIVE", {"principal_ids": ["P-CAFE-01", "MALL-ORION"]},
                                   "ops:asha")
    assert changed["restriction_state"] == "pending" and changed["version"] == 3
    with pytest.raises(InvalidInput, match="state: 'done' is not one of pending, pushed, failed"):
        kinds.set_restriction(gws, "GC-ORION-FESTIVE", "done", "ops:asha")
    flyer = files.store(gws, "GC-ORION-FESTIVE", "flyer.pdf", b"%PDF-1.4 flyer")
    assert (gws.home / flyer).read_bytes() == b"%PDF-1.4 flyer"
    with_file = kinds.update_program(gws, "GC-ORION-FESTIVE",
                                     {"communications": [{"title": "Flyer", "file": flyer}]}, "ops:asha")
    assert with_file["communications"] == [{"title": "Flyer", "url": None, "file": flyer}]
    for i in range(3):
        records.create(gws, kinds.PRINCIPALS, {"principal_id": f"B-{i}", "name": f"Brand {i}"}, "o")
    first, cursor = records.page(gws, kinds.PRINCIPALS, limit=2)
    assert [p["principal_id"] for p in first] == ["B-0", "B-1"] and cursor == "B-1"
    second, cursor = records.page(gws, kinds.PRINCIPALS, after=cursor, limit=2)
    assert [p["principal_id"] for p in second] == ["B-2", "MALL-ORION"]
    third, cursor = records.page(gws, kinds.PRINCIPALS, after=cursor, limit=2)
    assert [p["principal_id"] for p in third] == ["P-CAFE-01"] and cursor is None
    malls, _ = records.page(gws, kinds.PRINCIPALS, where={"kind": "mall"})
    assert [m["principal_id"] for m in malls] == ["MALL-ORION"]


def test_party_wallet_is_the_ledger_balance_and_details_are_sealed(gws):
    party = kinds.party_with_wallet(gws, "D-GIFTLY")
    assert party["wallet_account_id"] == "D-GIFTLY" and party["wallet_balance"] == "0.00"
    assert party["bank_account"]["account_number"] == "********2345"
    with gws.engine.connect() as conn:
        raw = conn.execute(select(gc_parties.c.details)).scalar_one()
    assert "000405012345" not in json.dumps(raw)
    # a ledger account of the sample merchant context as the wallet: its balance is the ledger's
    ingest.ingest_file(gws, write_ops(gws.home.parent / "ops.csv", [op("w1", "100.00")]), "reconciled")
    records.create(gws, kinds.PARTIES, {"party_id": "D-2", "name": "Two", "wallet_account_id": "M1",
                                        "wallet": {"currency": "EUR"}}, "o")
    assert kinds.party_with_wallet(gws, "D-2")["wallet_balance"] == "96.80"  # 100 - (2.9% + 0.30) fee


def test_assign_and_unassign_with_dates(gws):
    a = assignments.assign(gws, {"party_id": "D-GIFTLY", "program_id": "GC-ORION-FESTIVE",
                                 "commission_percent": "3", "agreement_reference": "AGR-7",
                                 "starts_on": "2026-11-01"}, "ops:asha")
    assert a["status"] == "active" and a["starts_on"] == "2026-11-01" and a["ends_on"] is None
    with pytest.raises(Conflict, match="starts_on: party 'D-GIFTLY' has program 'GC-ORION-FESTIVE' from"):
        assignments.assign(gws, {"party_id": "D-GIFTLY", "program_id": "GC-ORION-FESTIVE",
                                 "starts_on": "2026-12-01"}, "ops:asha")
    with pytest.raises(InvalidInput, match="ends_on: 2026-10-01 is before the assignment's starts_on"):
        assignments.unassign(gws, a["id"], "ops:asha", date(2026, 10, 1))
    ended = assignments.unassign(gws, a["id"], "ops:ravi", date(2026, 11, 30), "contract ended")
    assert ended["status"] == "unassigned" and ended["ends_on"] == "2026-11-30" and ended["version"] == 2
    with pytest.raises(Conflict, match="is unassigned"):
        assignments.unassign(gws, a["id"], "ops:ravi", date(2026, 11, 30))
    again = assignments.assign(gws, {"party_id": "D-GIFTLY", "program_id": "GC-ORION-FESTIVE",
                                     "commission_percent": "4", "starts_on": "2026-12-01"}, "ops:asha")
    in_nov, _ = assignments.list_assignments(gws, party_id="D-GIFTLY", on=date(2026, 11, 15))
    in_dec, _ = assignments.list_assignments(gws, party_id="D-GIFTLY", on=date(2026, 12, 15))
    assert [x["id"] for x in in_nov] == [a["id"]] and [x["id"] for x in in_dec] == [again["id"]]
    trail = history(gws, "gc_assignment", str(a["id"]))
    assert [t["action"] for t in trail] == ["assign", "unassign"]
    assert trail[1]["before"] == {"status": "active", "ends_on": None}
    assert trail[1]["after"] == {"status": "unassigned", "ends_on": "2026-11-30"}
    with pytest.raises(InvalidInput, match="party_id: no party 'D-NONE'"):
        assignments.assign(gws, {"party_id": "D-NONE", "program_id": "GC-ORION-FESTIVE",
                                 "starts_on": "2026-12-01"}, "o")


def test_voucher_transitions_are_validated_audited_and_written_to_delta(gws):
    issued = vouchers.issue(gws, "GC-ORION-FESTIVE", "500", 3, "485.50", "ops:asha", holder_id="D-GIFTLY")
    assert [v["status"] for v in issued] == ["issued"] * 3
    assert issued[0]["face_value"] == "500.00" and issued[0]["price_paid"] == "485.50"
    with gws.engine.connect() as conn:
        minor = conn.execute(select(gc_vouchers.c.face_value_minor, gc_vouchers.c.price_paid_minor)).first()
    assert tuple(minor) == (50000, 48550)
    first, second = issued[0]["voucher_id"], issued[1]["voucher_id"]
    assert vouchers.transition(gws, first, "distributed", "ops:asha")["distributed_at"] is not None
    redeemed = vouchers.transition(gws, first, "redeemed", "ops:asha", expected_version=2)
    assert redeemed["status"] == "redeemed" and redeemed["version"] == 3 and redeemed["redeemed_at"]
    with pytest.raises(Conflict, match=f"status: voucher '{first}' is redeemed; it cannot become cancelled"):
        vouchers.transition(gws, first, "cancelled", "ops:asha")
    vouchers.transition(gws, second, "cancelled", "ops:ravi", reason="printed wrong")
    with pytest.raises(InvalidInput, match="status: 'lost' is not one of"):
        vouchers.transition(gws, second, "lost", "ops:ravi")
    with pytest.raises(InvalidInput, match="face_value: 750 is not a face value of program"):
        vouchers.issue(gws, "GC-ORION-FESTIVE", "750", 1, "700", "ops:asha")
    with pytest.raises(InvalidInput, match=r"face_value: '500\.001' has 3 decimals, INR allows 2"):
        vouchers.issue(gws, "GC-ORION-FESTIVE", "500.001", 1, "700", "ops:asha")
    trail = history(gws, "gc_voucher", first)
    assert [t["action"] for t in trail] == ["issue", "distributed", "redeemed"]
    assert trail[2]["before"]["status"] == "distributed" and trail[2]["after"]["status"] == "redeemed"

    with gws.lake.connect("voucher_events") as con:
        rows = con.sql("SELECT voucher_id, event, from_status, to_status, face_value_minor, event_date "
                       "FROM lake_voucher_events ORDER BY event_at, event").fetchall()
    assert len(rows) == 6
    assert [(r[1], r[2], r[3]) for r in rows if r[0] == first] == [
        ("issued", None, "issued"), ("distributed", "issued", "distributed"), ("redeemed", "distributed",
                                                                                "redeemed")]
    assert {r[4] for r in rows} == {50000} and {r[5] for r in rows} == {date.today()}
    table = gws.lake.open("voucher_events")
    assert table.metadata().partition_columns == ["event_date"]
    assert events.publish(gws) == 0  # everything was published with its change

    con = analytics.connect(gws)
    assert con.sql("SELECT count(*) FROM voucher_events").fetchall() == [(6,)]
    assert con.sql("SELECT status, count(*) FROM vouchers GROUP BY status ORDER BY status").fetchall() == [
        ("cancelled", 1), ("issued", 1), ("redeemed", 1)]
    con.close()

    page, cursor = vouchers.list_vouchers(gws, status="issued")
    assert [v["voucher_id"] for v in page] == [issued[2]["voucher_id"]] and cursor is None
