"""The reconciliations `recon run --name` knows: each runs one business date (actor, dry run) and returns
its `RunSummary`; `RECORDS` reads the same date's input records (internal, external), and `window_days` how
long a break may wait for its counterpart."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ops_pipeline.recon import payouts, portal, settlement

if TYPE_CHECKING:
    from ops_pipeline.workspace import Workspace

RECONS = {"settlement": settlement.run, "payouts": payouts.run, "portal": portal.run}
RECORDS = {"settlement": settlement.records, "payouts": payouts.records, "portal": portal.records}


def window_days(ws: Workspace, recon: str) -> int:
    """Days a record of `recon` may wait for its counterpart: the settlement window of the slowest PSP
    (OPS_RECON_WINDOWS, default 3), the bank's booking delay for payouts, none for portal exports."""
    if recon == "payouts":
        return payouts.WINDOW_DAYS
    if recon == "portal":
        return 0  # an export is a snapshot of its date: nothing arrives later
    return max([settlement.DEFAULT_WINDOW_DAYS, *ws.settings.recon_windows.values()])
