"""The demo's portal chapter: Kettle & Co's portal exports its Classic Card vouchers (a CSV in its own
format, described by a portal mapping), with a few discrepancies, and the day is reconciled against ours.

The export lists every voucher of the brand's program as the portal sees it, except that: three of ours
are missing, one voucher is unknown to us, one has another face value, one is still active at the portal
though redeemed here, one expires a month later, one line is listed twice, and one line is unreadable
(quarantined with its reason). Running it again loads nothing new (same file) and finds the same breaks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ops_pipeline.errors import NotFound
from ops_pipeline.giftcards import portal_exports, records, vouchers
from ops_pipeline.giftcards.portal_mapping import MAPPINGS
from ops_pipeline.recon import portal
from ops_pipeline.workspace import Workspace

if TYPE_CHECKING:
    from ops_pipeline.demo.giftcards import GiftCardWorld

ACTOR = "demo-asha"
PROGRAM = "GC-KETTLE-CLASSIC"
STATUS_WORDS = {"distributed": "Active", "redeemed": "Used", "expired": "Lapsed"}
MAPPING = {
    "format": "csv", "delimiter": ",", "decimal_separator": ".", "date_format": "%d-%m-%Y",
    "statuses": {word: status for status, word in STATUS_WORDS.items()},
    "columns": {"voucher_id": "Card Number", "face_value": "Denomination", "status": "Card Status",
                "expiry": "Expiry Date"},
}


def run_portal(ws: Workspace, world: GiftCardWorld, echo: Callable[[str], None]) -> None:
    """Map the brand's portal, load today's export with its discrepancies, reconcile the day; print it."""
    try:
        records.get(ws, MAPPINGS, world.brand_id)
    except NotFound:
        records.create(ws, MAPPINGS, {"principal_id": world.brand_id, **MAPPING}, ACTOR,
                       reason="demo: Kettle & Co's portal export format")
    today = datetime.now(ws.settings.tz).date()
    ours = _ours(ws)
    data = _export(ws, ours)
    loaded = portal_exports.load_export(ws, world.brand_id, data, f"kettle-portal-{today}.csv", ACTOR,
                                        export_date=today)
    echo(f"Portal export of {world.brand_id} ({len(ours):,} of our {PROGRAM} vouchers): "
         f"{loaded.vouchers:,} lines loaded, {loaded.quarantined} quarantined")
    run = portal.run(ws, today, actor=ACTOR)
    echo("  reconciled: " + ", ".join(f"{n:,} {s}" for s, n in sorted(run.counts.items())))
    breaks = run.frame.filter(run.frame["status"] != "matched").sort("status")
    for row in breaks.head(8).iter_rows(named=True):
        ids = ", ".join((row["internal_ids"] or []) + (row["external_ids"] or []))
        echo(f"  {row['status']:<24} {ids}: {row['reason'] or '-'}")


def _ours(ws: Workspace) -> list[dict]:
    found, after = [], None
    while True:
        page, after = vouchers.list_vouchers(ws, program_id=PROGRAM, after=after, limit=records.MAX_PAGE)
        found += page
        if after is None:
            return found


def _export(ws: Workspace, ours: list[dict]) -> bytes:
    """The portal's CSV of `ours` (in id order) with the discrepancies of the module docstring."""
    tz = ws.settings.tz
    lines = []
    for v in ours:
        expiry = datetime.fromisoformat(v["expires_at"]).astimezone(tz).date()
        lines.append([v["voucher_id"], v["face_value"], STATUS_WORDS.get(v["status"], "Active"), expiry])
    redeemed = next(i for i, line in enumerate(lines) if line[2] == "Used")
    lines[redeemed][2] = "Active"  # still active at the portal
    lines[10][1] = "1000.00"  # another face value
    lines[20][3] += timedelta(days=30)  # a later expiry
    lines.append(list(lines[30]))  # listed twice
    del lines[40:43]  # three of ours missing
    lines.append(["GV-PORTAL-ONLY-0001", "500.00", "Active", lines[0][3]])  # unknown to us
    lines.append(["GV-UNREADABLE", "5OO.00", "Active", "31-02-2027"])  # quarantined
    text = ["Card Number,Denomination,Card Status,Expiry Date"]
    text += [f"{i},{face},{status},{e if isinstance(e, str) else e.strftime('%d-%m-%Y')}"
             for i, face, status, e in lines]
    return ("\n".join(text) + "\n").encode()
