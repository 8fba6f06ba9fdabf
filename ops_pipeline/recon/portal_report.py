"""The voucher section of the daily finance report: the portal reconciliation of the date by status, with
its open breaks and the export lines quarantined."""

from __future__ import annotations

from datetime import date

from ops_pipeline.giftcards.portal_exports import quarantined
from ops_pipeline.recon import breaks, portal
from ops_pipeline.reports.model import Section
from ops_pipeline.workspace import Workspace


def sections(ws: Workspace, day: date, last: date) -> list[Section]:
    """One section for the daily report (`day` == `last`): per status and currency the rows and the face
    values, ours and the portals'."""
    rows = tuple((status, currency, count, (ours, currency), (theirs, currency))
                 for status, currency, count, ours, theirs in portal.status_totals(ws, day, last))
    lines = len(quarantined(ws, export_date=day))
    note = "No portal export of this date."
    if rows or lines:
        found = len(breaks.open_breaks(ws, recon=portal.NAME, business_date=day))
        note = f"{found} open breaks (a ticket each, source reconciliation); {lines} lines quarantined."
    return [Section("vouchers_portal", f"Vouchers against principal portals {day}",
                    ("Status", "Currency", "Vouchers", "Face value ours", "Face value portal"), rows, note)]
