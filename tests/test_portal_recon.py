"""Portal exports parsed with the principal's mapping (CSV and XLSX) with quarantine reasons, loaded once;
the portal reconciliation's every kind of break with exact values, decisions, tickets and the checks."""

import io
from datetime import datetime

import pytest

from ops_pipeline import analytics
from ops_pipeline.errors import InvalidInput, NotFound
from ops_pipeline.giftcards import portal_exports, records
from ops_pipeline.giftcards.portal_mapping import MAPPINGS, mapping
from ops_pipeline.recon import breaks, checks, portal
from tests.portal_samples import HEADER, MAPPING, PRINCIPAL, export_csv, export_lines, seed_portal


@pytest.fixture
def pws(ws):
    ws.dates = seed_portal(ws)
    return ws


def today(ws):
    return datetime.now(ws.settings.tz).date()


def xlsx(ws, dates) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.split(";"))
    for voucher, value, state, expiry, used in export_lines(ws, dates):
        # native cells where a spreadsheet has them: numbers and dates
        number = float(value.replace(".", "").replace(",", ".")) if value[0].isdigit() and "O" not in value \
            else value
        when = datetime.strptime(expiry, "%d/%m/%Y") if "/" in expiry else expiry
        sheet.append([voucher, number, state, when, datetime.strptime(used, "%d/%m/%Y") if used else None])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_csv_and_xlsx_parse_alike_and_bad_lines_are_quarantined_with_reasons(pws):
    m = mapping(records.get(pws, MAPPINGS, PRINCIPAL))
    good, bad = portal_exports.parse(export_csv(pws, pws.dates), m, pws.settings.tz)
    assert good["voucher_id"].to_list() == ["GV-T1", "GV-T2", "GV-T3", "GV-T5", "GV-X9", "GV-T1"]
    assert good["face_value_minor"].to_list() == [50000, 50000, 100000, 50000, 50000, 50000]
    assert good["status"].to_list() == ["distributed"] * 4 + ["redeemed", "distributed"]
    assert good["row_number"].to_list() == [2, 3, 4, 5, 6, 7]
    assert str(good["redeemed_at"][4]) == "2026-12-01 00:00:00+00:00"  # OPS_TIMEZONE is UTC here
    assert bad["row_number"].to_list() == [8]
    assert bad["reason"][0] == (
        "face_value: '5OO,00' (column 'Value') is not an amount with at most 2 decimals, decimal separator ','; "
        "status: 'Lost' (column 'State') is not one of the mapped statuses ['active', 'cancelled', "
        "'distributed', 'expired', 'issued', 'redeemed', 'used', 'void']; "
        "expiry: '2027-01-01' (column 'Valid Till') does not match the date format %d/%m/%Y")
    assert '"Card No":"GV-T6"' in bad["raw"][0]
    as_xlsx = m.model_copy(update={"format": "xlsx"})
    good_x, bad_x = portal_exports.parse(xlsx(pws, pws.dates), as_xlsx, pws.settings.tz)
    assert good_x.equals(good) and bad_x["reason"].to_list() == bad["reason"].to_list()
    with pytest.raises(InvalidInput, match=r"columns \['Used On', 'Valid Till'\] of the mapping of P-CAFE-01 are not in the export"):
        portal_exports.parse(b"Card No;Value;State\nGV-1;1;Active\n", m, pws.settings.tz)


def test_an_export_loads_once_and_a_mapping_needs_its_principal(pws):
    day = today(pws)
    data = export_csv(pws, pws.dates)
    first = portal_exports.load_export(pws, PRINCIPAL, data, f"cafe-{day}.csv", "ops:asha")
    assert (first.vouchers, first.quarantined, first.export_date, first.already_loaded) == (6, 1, day, False)
    again = portal_exports.load_export(pws, PRINCIPAL, data, "renamed.csv", "ops:ravi")
    assert (again.vouchers, again.quarantined, again.already_loaded) == (0, 0, True)
    assert [q["row_number"] for q in portal_exports.quarantined(pws, PRINCIPAL, day)] == [8]
    with pytest.raises(InvalidInput, match=r"file: 'cafe-2026-02-30\.csv' names '2026-02-30', which is not a date"):
        portal_exports.load_export(pws, PRINCIPAL, data + b"GV-T9;500,00;Active;01/01/2027;\n",
                                   "cafe-2026-02-30.csv", "ops:asha")
    with pytest.raises(InvalidInput, match="principal_id: no principal 'P-NONE'"):
        records.create(pws, MAPPINGS, {**MAPPING, "principal_id": "P-NONE"}, "ops:asha")


def test_every_kind_of_break_with_exact_values(pws):
    day = today(pws)
    portal_exports.load_export(pws, PRINCIPAL, export_csv(pws, pws.dates), f"cafe-{day}.csv", "ops:asha")
    summary = portal.run(pws, day, actor="ops:asha")
    rows = {(r.status, r.internal_ids, r.external_ids): r for r in summary.rows}
    e = f"{PRINCIPAL}:"
    assert sorted(rows) == sorted([
        ("matched", ("GV-T1",), (e + "GV-T1",)),
        ("matched_with_difference", ("GV-T2",), (e + "GV-T2",)),
        ("matched_with_difference", ("GV-T3",), (e + "GV-T3",)),
        ("matched_with_difference", ("GV-T5",), (e + "GV-T5",)),
        ("unmatched_internal", ("GV-T4",), ()),
        ("unmatched_external", (), (e + "GV-X9",)),
        ("unmatched_external", (), (e + "GV-T1@7",)),
    ])
    expiry = datetime.strptime(pws.dates["expiry"], "%d/%m/%Y").date()
    later = datetime.strptime(pws.dates["other"], "%d/%m/%Y").date()
    t2 = rows[("matched_with_difference", ("GV-T2",), (e + "GV-T2",))]
    assert t2.reason == "voucher GV-T2 differs: status ours redeemed vs portal distributed"
    assert t2.amount_difference_minor == 0
    t3 = rows[("matched_with_difference", ("GV-T3",), (e + "GV-T3",))]
    assert t3.reason == "voucher GV-T3 differs: face value ours 50000 vs portal 100000 minor units"
    assert (t3.internal_amount_minor, t3.external_amount_minor, t3.amount_difference_minor) == (50000, 100000,
                                                                                                 -50000)
    t5 = rows[("matched_with_difference", ("GV-T5",), (e + "GV-T5",))]
    assert t5.reason == f"voucher GV-T5 differs: expiry ours {expiry} vs portal {later}"
    assert rows[("unmatched_internal", ("GV-T4",), ())].reason == (
        "voucher GV-T4 is missing from the portal export of P-CAFE-01")
    assert rows[("unmatched_external", (), (e + "GV-X9",))].reason == (
        "voucher GV-X9 (row 6) of the portal export of P-CAFE-01 is not ours")
    dup = rows[("unmatched_external", (), (e + "GV-T1@7",))]
    assert dup.reason == "duplicate: voucher GV-T1 is listed 2 times in the portal export of P-CAFE-01 " \
                         "(row 7 repeats row 2)"
    assert (dup.internal_amount_minor, dup.external_amount_minor, dup.currency) == (0, 50000, "INR")
    assert summary.counts["matched"] == 1 and summary.counts["unmatched_external"] == 2
    assert checks.check_exclusive(pws, "portal", day).passed
    assert checks.check_complete(pws, "portal", day).passed, checks.check_complete(pws, "portal", day)

    opened, _ = breaks.sync_tickets(pws)
    assert len(opened) == 6
    t4 = next(b for b in breaks.open_breaks(pws, recon="portal") if b["status"] == "unmatched_internal")
    breaks.resolve(pws, t4["break_id"], "write-off", "card destroyed at the counter", "ops:ravi")
    again = portal.run(pws, day, actor="ops:asha")
    manual = [r for r in again.rows if r.status == "manual"]
    assert [(r.internal_ids, r.internal_amount_minor, r.reason, r.decided_by) for r in manual] == [
        (("GV-T4",), 50000, "write-off", "ops:ravi")]
    assert checks.check_complete(pws, "portal", day).passed
    assert len(breaks.open_breaks(pws, recon="portal")) == 5
    found = {tuple(b["internal_ids"]) or tuple(b["external_ids"]): b["break_id"]
             for b in breaks.open_breaks(pws, recon="portal")}
    breaks.resolve(pws, found[("GV-T3",)], "unmatch", "not the same card", "ops:ravi")
    breaks.resolve(pws, found[("GV-T5",)], "match", "portal shows the extended expiry", "ops:ravi")
    third = {(r.status, r.internal_ids, r.external_ids): r.reason for r in portal.run(pws, day, actor="ops").rows}
    assert third[("unmatched_internal", ("GV-T3",), ())] == "manually unmatched"
    assert third[("unmatched_external", (), (e + "GV-T3",))] == "manually unmatched"
    assert third[("manual", ("GV-T5",), (e + "GV-T5",))] == "manual match"
    assert checks.check_complete(pws, "portal", day).passed
    kinds = analytics.connect(pws).sql("SELECT kind, count(*), sum(face_value_portal_minor)::BIGINT "
                                       "FROM portal_recon GROUP BY 1 ORDER BY 1").fetchall()
    assert kinds == [("differs", 1, 50000), ("duplicate", 1, 50000), ("manual", 2, 50000), ("matched", 1, 50000),
                     ("missing_on_portal", 1, 0), ("not_ours", 2, 150000)]
    with pytest.raises(NotFound, match="principal_id: no portal export of 'MALL-ORION'"):
        portal.run(pws, day, actor="ops:asha", principal_id="MALL-ORION")
