"""Settlement: every confirmed operation (CO) reconciled by its reconciled operation (RO) within the PSP's
window (`OPS_RECON_WINDOWS`, default 3 days).

Records are the log's CO and RO operations (`balance_operations` without fees), one per side and
`falcon_operation_id` (the operation identity CO and RO share), with signed minor amounts. For business
date D (in OPS_TIMEZONE) the internal side is the COs of D; the external side is the ROs of those COs dated
at most D + window, and the ROs of D that belong to no CO's date (no CO, or later than its CO's window).
So every RO is in exactly one date's run: a late RO is a break on its own date, its CO one on D.

Rules: `exact` (operation, merchant, currency and amount), then `amount_difference` (the same but any
amount: matched with the exact difference). An RO of the same operation with another currency or merchant
stays unmatched on both sides, the reason naming the difference.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from ops_pipeline import analytics
from ops_pipeline.lake.tables import BALANCE_OPERATIONS
from ops_pipeline.recon import service
from ops_pipeline.recon.engine import ResultRow
from ops_pipeline.recon.rules import Criteria, Recon, Rule

if TYPE_CHECKING:
    from ops_pipeline.workspace import Workspace

DEFAULT_WINDOW_DAYS = 3
KEYS = ("falcon_operation_id", "merchant_id")
ANY_AMOUNT = 2**62  # the difference rule takes every amount gap
SETTLEMENT = Recon("settlement", (
    Rule("exact", Criteria(equal=KEYS)),
    Rule("amount_difference", Criteria(equal=KEYS, amount_tolerance_minor=ANY_AMOUNT)),
))
BUCKETS = ("0-1", "2-3", "4-7", "8-30", ">30")

_RECORDS = """
WITH ops AS (
    SELECT falcon_operation_id AS id, falcon_operation_id, source, amount_minor AS amount, currency,
           merchant_id, psp_id, CAST(timezone($tz, operation_date) AS DATE) AS day
    FROM {log} WHERE source IN ('CO', 'RO') AND type <> 'psp_fee'
),
co AS (SELECT * FROM ops WHERE source = 'CO'),
ro AS (
    SELECT ro.*, CASE WHEN ro.day <= co.day + CAST(coalesce(w.days, $default) AS INTEGER) THEN co.day
                      ELSE ro.day END AS business_date
    FROM (SELECT * FROM ops WHERE source = 'RO') ro
    LEFT JOIN co USING (id) LEFT JOIN windows w ON w.psp_id = co.psp_id
)
SELECT id, falcon_operation_id, amount, currency, merchant_id FROM {side} WHERE {day} = $date ORDER BY id
"""


def records(ws: Workspace, business_date: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(COs, ROs) of the business date: id, falcon_operation_id, amount (minor), currency, merchant_id."""
    windows = ws.settings.recon_windows
    with ws.lake.connect(BALANCE_OPERATIONS.name) as con:
        log = f"lake_{BALANCE_OPERATIONS.name}"
        con.register("windows", pa.table({"psp_id": pa.array(list(windows), pa.string()),
                                          "days": pa.array(list(windows.values()), pa.int64())}))
        params = {"tz": ws.settings.timezone, "default": DEFAULT_WINDOW_DAYS, "date": business_date}
        return tuple(con.sql(_RECORDS.format(log=log, side=side, day=day), params=params).pl()
                     for side, day in (("co", "day"), ("ro", "business_date")))


def run(ws: Workspace, business_date: date, *, actor: str, dry_run: bool = False) -> service.RunSummary:
    """Reconcile the COs of `business_date` against their ROs (see the module docstring)."""
    internal, external = records(ws, business_date)
    summary = service.run(ws, SETTLEMENT, business_date, internal, external, actor=actor, dry_run=True)
    rows = _explain(summary.rows, internal, external)
    if dry_run:
        return service.RunSummary(SETTLEMENT.name, business_date, None, None, rows)
    return service.record(ws, SETTLEMENT, business_date, rows, actor=actor)


def _explain(rows: tuple[ResultRow, ...], internal: pl.DataFrame,
             external: pl.DataFrame) -> tuple[ResultRow, ...]:
    """Unmatched CO and RO of one operation: the reason names what differs (currency, merchant)."""
    cos = {r["id"]: r for r in internal.iter_rows(named=True)}
    ros = {r["id"]: r for r in external.iter_rows(named=True)}
    lone = ({i for r in rows if r.status == "unmatched_internal" for i in r.internal_ids}
            & {i for r in rows if r.status == "unmatched_external" for i in r.external_ids})
    explained = []
    for r in rows:
        key = (*r.internal_ids, *r.external_ids)[0]
        if r.status.startswith("unmatched") and key in lone:
            co, ro = cos[key], ros[key]
            differs = [f"{f} CO {co[f]} vs RO {ro[f]}" for f in ("currency", "merchant_id") if co[f] != ro[f]]
            r = dataclasses.replace(r, reason=f"CO and RO of {key} differ: {', '.join(differs)}")
        explained.append(r)
    return tuple(explained)


def aging(ws: Workspace, today: date) -> list[tuple[str, str, int, int]]:
    """COs still unreconciled as of `today`: (bucket, currency, count, amount minor), buckets in order."""
    con = analytics.connect(ws)
    try:
        con.execute(f"CREATE OR REPLACE TEMP MACRO business_today() AS DATE '{today.isoformat()}'")
        found = con.execute("SELECT age_bucket, currency, count(*), sum(amount_minor)::BIGINT "
                            "FROM settlement_aging GROUP BY ALL").fetchall()
    finally:
        con.close()
    return sorted(found, key=lambda r: (BUCKETS.index(r[0]), r[1]))
