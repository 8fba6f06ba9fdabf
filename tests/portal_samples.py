"""A principal with a portal mapping, five vouchers of ours and an export with one of each discrepancy."""

from datetime import datetime, timedelta

from ops_pipeline.giftcards import records, vouchers
from ops_pipeline.giftcards.portal_mapping import MAPPINGS
from tests.giftcard_samples import seed

PRINCIPAL = "P-CAFE-01"
MAPPING = {
    "principal_id": PRINCIPAL, "format": "csv", "delimiter": ";", "decimal_separator": ",",
    "date_format": "%d/%m/%Y", "statuses": {"Active": "distributed", "Used": "redeemed", "Void": "cancelled"},
    "columns": {"voucher_id": "Card No", "face_value": "Value", "status": "State", "expiry": "Valid Till",
                "redeemed_at": "Used On"},
}
IDS = [f"GV-T{i}" for i in range(1, 6)]
HEADER = "Card No;Value;State;Valid Till;Used On"


def seed_portal(ws) -> dict:
    """Records, mapping and vouchers GV-T1..5 (500.00, distributed to D-GIFTLY; GV-T2 redeemed); returns
    the expiry as the export writes it."""
    seed(ws)
    records.create(ws, MAPPINGS, MAPPING, "ops:asha")
    issued = vouchers.issue(ws, "GC-ORION-FESTIVE", "500.00", 5, "480.00", "ops:asha", "D-GIFTLY",
                            distributed=True, voucher_ids=IDS)
    vouchers.transition(ws, "GV-T2", "redeemed", "ops:asha")
    expiry = datetime.fromisoformat(issued[0]["expires_at"]).astimezone(ws.settings.tz).date()
    return {"expiry": expiry.strftime("%d/%m/%Y"), "other": (expiry + timedelta(days=30)).strftime("%d/%m/%Y")}


def export_lines(ws, dates: dict) -> list[list[str]]:
    """GV-T1 agrees (and is listed twice), GV-T2 says Active (ours redeemed), GV-T3 says 1.000,00, GV-T4 is
    missing, GV-T5's expiry is 30 days later, GV-X9 is not ours, and one line has a bad value."""
    e = dates["expiry"]
    return [["GV-T1", "500,00", "Active", e, ""], ["GV-T2", "500", "Active", e, ""],
            ["GV-T3", "1.000,00", "Active", e, ""], ["GV-T5", "500,00", "Active", dates["other"], ""],
            ["GV-X9", "500,00", "Used", e, "01/12/2026"], ["GV-T1", "500,00", "Active", e, ""],
            ["GV-T6", "5OO,00", "Lost", "2027-01-01", ""]]


def export_csv(ws, dates: dict) -> bytes:
    return "\n".join([HEADER, *(";".join(line) for line in export_lines(ws, dates))]).encode() + b"\n"
