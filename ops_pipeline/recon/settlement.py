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

A date without manual decisions runs as DuckDB queries (`results`: the same rows as the engine's, in its
order), written to the lake as Parquet files in parallel; a date with decisions goes through the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

import duckdb
import polars as pl
import pyarrow as pa

from ops_pipeline import analytics
from ops_pipeline.lake.tables import BALANCE_OPERATIONS
from ops_pipeline.ledger.split import primary_sql
from ops_pipeline.recon import service, store
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
_RULES = ", ".join(r.id for r in SETTLEMENT.rules)
BUCKETS = ("0-1", "2-3", "4-7", "8-30", ">30")

_OPS = """
WITH ops AS NOT MATERIALIZED (
    SELECT falcon_operation_id AS id, falcon_operation_id, source, amount_minor AS amount, currency,
           merchant_id, psp_id, CAST(timezone($tz, operation_date) AS DATE) AS day
    FROM {log} WHERE source IN ('CO', 'RO') AND """ + primary_sql() + """
        AND operation_date >= $scan_from AND operation_date < $scan_to
)"""
_RECORDS = _OPS + """,
co AS NOT MATERIALIZED (SELECT * FROM ops WHERE source = 'CO'),
ro AS (
    SELECT ro.*, CASE WHEN ro.day <= co.day + CAST(coalesce(w.days, $default) AS INTEGER) THEN co.day
                      ELSE ro.day END AS business_date
    FROM (SELECT * FROM ops WHERE source = 'RO') ro
    LEFT JOIN co USING (id) LEFT JOIN windows w ON w.psp_id = co.psp_id
)
SELECT source, id, falcon_operation_id, amount, currency, merchant_id FROM co WHERE day = $date
UNION ALL
SELECT source, id, falcon_operation_id, amount, currency, merchant_id FROM ro WHERE business_date = $date
"""
# The fast path: the date's operations, CO and RO side by side (the RO's business date from its CO). Days
# by the session's time zone (set to OPS_TIMEZONE): cheaper than timezone() per row.
_OPERATIONS = _OPS.replace("timezone($tz, operation_date)", "operation_date") + """,
co AS NOT MATERIALIZED (SELECT * FROM ops WHERE source = 'CO'),
ro AS NOT MATERIALIZED (SELECT * FROM ops WHERE source = 'RO'),
both_sides AS (
    SELECT coalesce(co.id, ro.id) AS id, co.amount AS amount_co, ro.amount AS amount_ro,
           co.currency AS currency_co, ro.currency AS currency_ro, co.merchant_id AS merchant_co,
           ro.merchant_id AS merchant_ro, coalesce(co.day = $date, false) AS co_in,
           coalesce(CASE WHEN ro.day <= co.day + CAST(coalesce(w.days, $default) AS INTEGER) THEN co.day
                         ELSE ro.day END = $date, false) AS ro_in
    FROM co FULL OUTER JOIN ro USING (id) LEFT JOIN windows w ON w.psp_id = co.psp_id
)
SELECT *, co_in AND ro_in AND currency_co = currency_ro AND coalesce(merchant_co = merchant_ro, false) AS pair
FROM both_sides WHERE co_in OR ro_in
"""
_RESULTS = """
WITH rows AS (
    SELECT *, CASE WHEN NOT pair THEN 2 WHEN amount_co = amount_ro THEN 0 ELSE 1 END AS kind
    FROM operations WHERE co_in
    UNION ALL
    SELECT *, 3 AS kind FROM operations WHERE ro_in AND NOT pair
)
SELECT 'settlement' AS recon, CAST($date AS DATE) AS business_date,
       CASE WHEN kind = 3 THEN []::VARCHAR[] ELSE [id] END AS internal_ids,
       CASE WHEN kind = 2 THEN []::VARCHAR[] ELSE [id] END AS external_ids,
       CASE kind WHEN 0 THEN 'exact' WHEN 1 THEN 'amount_difference' END AS rule_id,
       CASE kind WHEN 0 THEN 'matched' WHEN 1 THEN 'matched_with_difference' WHEN 2 THEN 'unmatched_internal'
                 ELSE 'unmatched_external' END AS status,
       CAST(CASE WHEN kind = 3 THEN 0 ELSE amount_co END AS BIGINT) AS internal_amount_minor,
       CAST(CASE WHEN kind = 2 THEN 0 ELSE amount_ro END AS BIGINT) AS external_amount_minor,
       CASE WHEN kind = 3 THEN currency_ro ELSE currency_co END AS currency,
       CASE WHEN kind = 0 THEN 'rule exact'
            WHEN kind = 1 THEN 'rule amount_difference: internal - external = '
                               || (amount_co - amount_ro) || ' minor units'
            WHEN co_in AND ro_in THEN 'CO and RO of ' || id || ' differ: ' || concat_ws(', ', {differs})
            ELSE '{nothing}' END AS reason,
       NULL::VARCHAR AS decided_by, NULL::VARCHAR AS note
FROM rows ORDER BY kind, CASE WHEN kind = 1 THEN abs(amount_co - amount_ro) ELSE 0 END, id
"""
_DECLINED = """
SELECT count(*) - count(DISTINCT id) + count(*) FILTER ((co_in AND (amount_co IS NULL OR currency_co IS NULL))
    OR (ro_in AND (amount_ro IS NULL OR currency_ro IS NULL))) FROM operations
"""
_DIFFERS = ", ".join(f"CASE WHEN {f}_co <> {f}_ro THEN '{name} CO ' || {f}_co || ' vs RO ' || {f}_ro END"
                     for f, name in (("currency", "currency"), ("merchant", "merchant_id")))


@contextmanager
def _scan(ws: Workspace, business_date: date) -> Iterator[tuple[duckdb.DuckDBPyConnection, dict, str]]:
    """A DuckDB connection over the log with the PSP windows registered, the query parameters of the date and
    the log's name. Only the log of the dates D - w .. D + w (w the longest window, a day of time-zone margin
    each side) is read: that is every CO and RO deciding which ROs are D's, unless an RO precedes its CO by
    more than w days (then that RO is on its own date)."""
    windows = ws.settings.recon_windows
    widest = max([DEFAULT_WINDOW_DAYS, *windows.values()])
    midnight = datetime.combine(business_date, time(), UTC)
    with ws.lake.connect(BALANCE_OPERATIONS.name) as con:
        con.register("windows", pa.table({"psp_id": pa.array(list(windows), pa.string()),
                                          "days": pa.array(list(windows.values()), pa.int64())}))
        params = {"tz": ws.settings.timezone, "default": DEFAULT_WINDOW_DAYS, "date": business_date,
                  "scan_from": midnight - timedelta(days=widest + 1),
                  "scan_to": midnight + timedelta(days=widest + 2)}
        yield con, params, f"lake_{BALANCE_OPERATIONS.name}"


def records(ws: Workspace, business_date: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(COs, ROs) of the business date: id, falcon_operation_id, amount (minor), currency, merchant_id."""
    with _scan(ws, business_date) as (con, params, log):
        found = con.sql(_RECORDS.format(log=log), params=params).pl()
    return tuple(found.filter(pl.col("source") == source).drop("source") for source in ("CO", "RO"))


def run(ws: Workspace, business_date: date, *, actor: str, dry_run: bool = False) -> service.RunSummary:
    """Reconcile the COs of `business_date` against their ROs (see the module docstring)."""
    frame = None if store.decisions(ws, SETTLEMENT.name, business_date) else results(ws, business_date)
    if frame is None:
        frame = _matched(ws, business_date, actor)
    if dry_run:
        return service.RunSummary(SETTLEMENT.name, business_date, None, None, frame)
    return service.record(ws, SETTLEMENT, business_date, frame, actor=actor)


def results(ws: Workspace, business_date: date) -> pl.DataFrame | None:
    """The date's result rows (`RESULT_SCHEMA`) when it has no decisions, as the engine and
    `_explain` make them, by DuckDB; None when an operation has more than one CO or RO of the date (or
    no id, amount or currency), which the engine refuses.

    Settlement's rules key on the operation, which is unique per side: every record has at most one
    candidate, so the greedy pass takes every candidate, and the result is a full outer join of the date's
    COs and ROs by operation, in the engine's order (exact pairs by id, difference pairs by absolute
    difference then id, then unmatched CO and unmatched RO by id)."""
    with _scan(ws, business_date) as (con, params, log):
        con.execute(f"SET TimeZone = '{ws.settings.timezone}'")
        con.execute(f"CREATE TEMP TABLE operations AS {_OPERATIONS.format(log=log)}",
                    {k: v for k, v in params.items() if k != "tz"})
        if con.execute(_DECLINED).fetchall()[0][0]:
            return None
        query = _RESULTS.format(differs=_DIFFERS, nothing=f"no match under rules: {_RULES}")
        return con.sql(query, params={"date": business_date}).pl()


def _matched(ws: Workspace, business_date: date, actor: str) -> pl.DataFrame:
    """The result frame by the engine, with the date's decisions, lone CO and RO explained."""
    internal, external = records(ws, business_date)
    summary = service.run(ws, SETTLEMENT, business_date, internal, external, actor=actor, dry_run=True)
    return _explain(summary.frame, internal, external)


def _explain(results: pl.DataFrame, internal: pl.DataFrame, external: pl.DataFrame) -> pl.DataFrame:
    """Unmatched CO and RO of one operation: the reason names what differs (currency, merchant)."""
    def lone(status: str, ids: str, records: pl.DataFrame, side: str) -> pl.DataFrame:
        return (results.filter(pl.col("status") == status).select(pl.col(ids).list.first().alias("_key"))
                .join(records.select(pl.col("id").alias("_key"), pl.col("currency").alias(f"currency_{side}"),
                                     pl.col("merchant_id").alias(f"merchant_id_{side}")), on="_key"))

    differs = [pl.when(pl.col(f"{f}_co") != pl.col(f"{f}_ro"))
               .then(pl.format(f"{f} CO {{}} vs RO {{}}", pl.col(f"{f}_co"), pl.col(f"{f}_ro")))
               for f in ("currency", "merchant_id")]
    why = (lone("unmatched_internal", "internal_ids", internal, "co")
           .join(lone("unmatched_external", "external_ids", external, "ro"), on="_key")
           .select("_key", pl.format("CO and RO of {} differ: {}", "_key", pl.concat_list(differs)
                                     .list.drop_nulls().list.join(", ")).alias("_why")))
    if why.is_empty():
        return results
    key = pl.coalesce(pl.col("internal_ids").list.first(), pl.col("external_ids").list.first())
    return (results.with_columns(key.alias("_key")).join(why, on="_key", how="left", maintain_order="left")
            .with_columns(pl.when(pl.col("status").str.starts_with("unmatched"))
                          .then(pl.coalesce("_why", "reason")).otherwise("reason").alias("reason"))
            .drop("_key", "_why"))


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
