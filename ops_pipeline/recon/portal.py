"""Vouchers against the principals' portal exports: for business date D, every principal with an export
dated D (its latest export of D) is reconciled: our vouchers of the programs the principal redeems, as they
stood at the end of D (OPS_TIMEZONE), against the export's lines.

Our side comes from `gc_vouchers`: a voucher issued by the end of D, its status at the end of D from the time
of each status (statuses only move forward: cancelled, expired or redeemed by then, else distributed by
then, else issued), its face value, and its expiry (`expires_at`, set at issue from the program's validity)
as a date in OPS_TIMEZONE. The export side is `portal_vouchers` (`giftcards.portal_exports`).

One DuckDB full outer join on (principal, voucher id) gives every row of the date (`engine.RESULT_SCHEMA`):
- `matched` (rule `exact`): face value, currency, status and expiry all agree;
- `matched_with_difference` (rule `same_voucher`): the voucher is on both sides but differs; the reason
  names each difference, the amount difference is the face values' (0 when only status or expiry differ);
- `unmatched_internal`: ours, missing from the export; `unmatched_external`: in the export, not ours;
- duplicates: an export line listing a voucher again (marked at intake: `repeats_row`) is an
  `unmatched_external` row whose reason says which line it repeats, its id `@<row>`; the first line is the
  one compared. Our side cannot repeat a voucher: `gc_vouchers` is keyed by voucher id, and a principal
  counts once per program (`check_exclusive` would catch it).
Internal ids are voucher ids, external ids `<principal>:<voucher id>`. Decisions of ops users (write off,
match, unmatch a break) apply on top as in the engine: a forced match or write-off replaces the rows of its
records by one `manual` row; an unmatched pair becomes its two unmatched rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

import duckdb
import polars as pl
from sqlalchemy import select

from ops_pipeline.db.arrow import arrow_tables
from ops_pipeline.db.schema import gc_programs, gc_vouchers
from ops_pipeline.errors import NotFound
from ops_pipeline.lake.tables import PORTAL_VOUCHERS
from ops_pipeline.recon import service, store
from ops_pipeline.recon.engine import RESULT_SCHEMA, STATUSES, Decision, fold_decisions
from ops_pipeline.recon.rules import Recon

if TYPE_CHECKING:
    from ops_pipeline.workspace import Workspace

NAME = "portal"
PORTAL = Recon(NAME, ())
OURS = {"principal_id": pl.String, "voucher_id": pl.String, "face_value_minor": pl.Int64,
        "currency": pl.String, "status": pl.String, "expiry_date": pl.Date}

# The export lines of D: per principal its latest export of D.
_THEIRS = """
CREATE TEMP VIEW theirs AS
SELECT principal_id, voucher_id, row_number, face_value_minor, currency, status, expiry_date, repeats_row,
       times_listed
FROM lake_portal_vouchers
WHERE export_date = $date AND export_id IN (
    SELECT arg_max(export_id, loaded_at) FROM lake_portal_vouchers WHERE export_date = $date
    GROUP BY principal_id)
"""
# kind: 0 matched, 1 differs, 2 ours only, 3 the export's only, 5 a line repeating an earlier one. A repeated
# line (`repeats_row`, marked at intake) is its own row; the first line of the voucher is compared.
_COMPARE = """
WITH j AS (
    SELECT principal_id, voucher_id, o.voucher_id IS NOT NULL AS has_o, t.voucher_id IS NOT NULL AS has_t,
           o.face_value_minor AS face_o, t.face_value_minor AS face_t,
           o.currency AS cur_o, t.currency AS cur_t, o.status AS st_o, t.status AS st_t,
           o.expiry_date AS exp_o, t.expiry_date AS exp_t, t.row_number AS row_t, t.repeats_row,
           t.times_listed
    FROM ours o FULL OUTER JOIN theirs t USING (principal_id, voucher_id)
),
k AS (
    SELECT *, CASE
        WHEN repeats_row IS NOT NULL THEN 5
        WHEN has_o AND has_t THEN
            CASE WHEN face_o = face_t AND cur_o = cur_t AND st_o = st_t AND exp_o IS NOT DISTINCT FROM exp_t
                 THEN 0 ELSE 1 END
        WHEN has_o THEN 2
        ELSE 3 END AS kind
    FROM j
)
SELECT CAST(kind AS TINYINT) AS kind, principal_id, voucher_id, row_t, face_o, face_t,
       coalesce(cur_o, cur_t) AS currency,
       CASE kind
           WHEN 0 THEN NULL  -- 'rule exact', filled in by Polars: no string per matched row here
           WHEN 1 THEN 'voucher ' || voucher_id || ' differs: ' || concat_ws('; ',
               CASE WHEN face_o <> face_t THEN 'face value ours ' || face_o || ' vs portal ' || face_t
                                               || ' minor units' END,
               CASE WHEN cur_o <> cur_t THEN 'currency ours ' || cur_o || ' vs portal ' || cur_t END,
               CASE WHEN st_o <> st_t THEN 'status ours ' || st_o || ' vs portal ' || st_t END,
               CASE WHEN exp_o IS DISTINCT FROM exp_t
                    THEN 'expiry ours ' || exp_o || ' vs portal '
                         || coalesce(CAST(exp_t AS VARCHAR), 'none') END)
           WHEN 2 THEN 'voucher ' || voucher_id || ' is missing from the portal export of ' || principal_id
           WHEN 3 THEN 'voucher ' || voucher_id || ' (row ' || row_t || ') of the portal export of '
                       || principal_id || ' is not ours'
           ELSE 'duplicate: voucher ' || voucher_id || ' is listed ' || times_listed
                || ' times in the portal export of ' || principal_id || ' (row ' || row_t || ' repeats row '
                || repeats_row || ')' END AS reason
FROM k
"""
_RECORDS = """
SELECT {key} AS id, face_value_minor AS amount, * FROM {side} ORDER BY id
"""


def compare(con: duckdb.DuckDBPyConnection, business_date: date) -> pl.DataFrame:
    """The result rows (`RESULT_SCHEMA`) of relations `ours` and `theirs` in `con` (columns of `OURS`),
    unordered (readers order them). DuckDB joins and classifies, returning flat columns; Polars makes the id
    lists (measured: building them in DuckDB took three times as long as the whole join)."""
    flat = con.sql(_COMPARE).pl()
    k, p, v = pl.col("kind"), pl.col("principal_id"), pl.col("voucher_id")
    external_id = (pl.when(k == 5).then(pl.format("{}:{}@{}", p, v, "row_t"))
                   .otherwise(pl.format("{}:{}", p, v)))
    none = pl.lit([], pl.List(pl.String))
    internal, external = k.is_in([0, 1, 2]), k.is_in([0, 1, 3, 5])
    return flat.select(
        recon=pl.lit(NAME), business_date=pl.lit(business_date, pl.Date),
        internal_ids=pl.when(internal).then(pl.concat_list(v)).otherwise(none),
        external_ids=pl.when(external).then(pl.concat_list(external_id)).otherwise(none),
        rule_id=pl.when(k == 0).then(pl.lit("exact")).when(k == 1).then(pl.lit("same_voucher")),
        status=pl.when(k == 0).then(pl.lit("matched")).when(k == 1).then(pl.lit("matched_with_difference"))
        .when(internal).then(pl.lit("unmatched_internal")).otherwise(pl.lit("unmatched_external")),
        internal_amount_minor=pl.when(internal).then("face_o").otherwise(0),
        external_amount_minor=pl.when(external).then("face_t").otherwise(0),
        currency="currency", reason=pl.col("reason").fill_null("rule exact"),
        decided_by=pl.lit(None, pl.String), note=pl.lit(None, pl.String),
    ).cast(RESULT_SCHEMA)


def register_theirs(con: duckdb.DuckDBPyConnection, business_date: date) -> None:
    """The view `theirs` in `con` (which has `lake_portal_vouchers`): the export lines of the date."""
    con.execute(_THEIRS.replace("$date", f"DATE '{business_date.isoformat()}'"))


def principals_of(ws: Workspace, business_date: date) -> list[str]:
    """The principals with an export dated `business_date`."""
    with ws.lake.connect(PORTAL_VOUCHERS.name) as con:
        found = con.execute("SELECT DISTINCT principal_id FROM lake_portal_vouchers WHERE export_date = ? "
                            "ORDER BY 1", [business_date]).fetchall()
    return [r[0] for r in found]


def ours(ws: Workspace, principal_ids: list[str], business_date: date) -> pl.DataFrame:
    """Our vouchers of the principals' programs as they stood at the end of `business_date` (`OURS`)."""
    end = datetime.combine(business_date + timedelta(days=1), time(), ws.settings.tz).astimezone(UTC)
    wanted = set(principal_ids)
    with ws.read_engine.connect() as conn:
        found = conn.execute(select(gc_programs.c.program_id, gc_programs.c.details)).all()
        programs = [(r.program_id, p) for r in found for p in r.details.get("principal_ids", ())
                    if p in wanted]
        v = gc_vouchers.c
        query = (select(v.voucher_id, v.program_id, v.currency, v.face_value_minor, v.expires_at,
                        v.distributed_at, v.redeemed_at, v.expired_at, v.cancelled_at)
                 .where(v.program_id.in_({p for p, _ in programs}), v.issued_at < end))
        frame = pl.from_arrow(arrow_tables(conn, {"vouchers": query})["vouchers"])
    by = lambda c: pl.col(c) < end  # noqa: E731 - a status reached by the end of the date
    status = (pl.when(by("cancelled_at")).then(pl.lit("cancelled")).when(by("expired_at"))
              .then(pl.lit("expired")).when(by("redeemed_at")).then(pl.lit("redeemed"))
              .when(by("distributed_at")).then(pl.lit("distributed")).otherwise(pl.lit("issued")))
    links = pl.DataFrame(programs, schema={"program_id": pl.String, "principal_id": pl.String},
                         orient="row").unique()  # a principal listed twice by a program counts once
    return (frame.join(links, on="program_id")
            .with_columns(status.alias("status"),
                          pl.col("expires_at").dt.convert_time_zone(str(ws.settings.tz)).dt.date()
                          .alias("expiry_date"))
            .select(list(OURS)))


def results(ws: Workspace, business_date: date, principal_id: str | None = None) -> pl.DataFrame:
    """The date's result rows before decisions; NotFound when `principal_id` has no export of the date."""
    principals = principals_of(ws, business_date)
    if principal_id is not None and principal_id not in principals:
        raise NotFound(f"principal_id: no portal export of {principal_id!r} dated {business_date}")
    with ws.lake.connect(PORTAL_VOUCHERS.name) as con:
        register_theirs(con, business_date)
        con.register("ours", ours(ws, principals, business_date))
        return compare(con, business_date)


def run(ws: Workspace, business_date: date, *, actor: str, dry_run: bool = False,
        principal_id: str | None = None) -> service.RunSummary:
    """Reconcile every principal's export of `business_date` (see the module docstring); `principal_id`
    requires that principal to have one."""
    frame = decide(results(ws, business_date, principal_id), store.decisions(ws, NAME, business_date))
    if dry_run:
        return service.RunSummary(NAME, business_date, None, None, frame)
    return service.record(ws, PORTAL, business_date, frame, actor=actor)


def records(ws: Workspace, business_date: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(ours, the exports' lines) of the date with `id` as the result rows name them (a repeated voucher
    `@<row>`) and `amount` (the face value), as the other recons' records have."""
    principals = principals_of(ws, business_date)
    with ws.lake.connect(PORTAL_VOUCHERS.name) as con:
        register_theirs(con, business_date)
        con.register("ours", ours(ws, principals, business_date))
        keys = {"ours": "voucher_id", "theirs": "principal_id || ':' || voucher_id "
                "|| CASE WHEN repeats_row IS NULL THEN '' ELSE '@' || row_number END"}
        return tuple(con.sql(_RECORDS.format(side=side, key=key)).pl() for side, key in keys.items())


def decide(frame: pl.DataFrame, decisions: list[Decision]) -> pl.DataFrame:
    """The rows with the decisions applied: a forced match or write-off replaces the rows holding its ids by
    one `manual` row; an unmatch decision splits the pair it names into its two unmatched rows."""
    if not decisions:
        return frame
    forced, forbidden = fold_decisions(decisions)
    manual = []
    for d in forced:
        touches = (pl.col("internal_ids").list.set_intersection(list(d.internal_ids)).list.len() > 0) | (
            pl.col("external_ids").list.set_intersection(list(d.external_ids)).list.len() > 0)
        taken = frame.filter(touches)
        if taken.is_empty():  # its records are no longer in this date's rows
            continue
        frame = frame.filter(~touches)
        manual.append({**taken.row(0, named=True), "internal_ids": sorted(d.internal_ids),
                       "external_ids": sorted(d.external_ids), "rule_id": None, "status": "manual",
                       "internal_amount_minor": int(taken.filter(pl.col("internal_ids").list.len() > 0)
                                                    ["internal_amount_minor"].sum()),
                       "external_amount_minor": int(taken.filter(pl.col("external_ids").list.len() > 0)
                                                    ["external_amount_minor"].sum()),
                       "reason": "write-off" if d.action == "write_off" else "manual match",
                       "decided_by": d.actor, "note": d.note})
    for internal_ids, external_ids in forbidden:
        pair = ((pl.col("internal_ids").list.sort() == sorted(internal_ids))
                & (pl.col("external_ids").list.sort() == sorted(external_ids)))
        frame = pl.concat([frame.filter(~pair), *(_side(frame.filter(pair), side)
                                                   for side in ("internal", "external"))])
    return pl.concat([frame, pl.DataFrame(manual, schema=RESULT_SCHEMA)])


def _side(pairs: pl.DataFrame, side: str) -> pl.DataFrame:
    """The `side` half of matched pairs, as unmatched rows."""
    other = "external" if side == "internal" else "internal"
    return pairs.with_columns(pl.lit([], pl.List(pl.String)).alias(f"{other}_ids"),
                              pl.lit(0, pl.Int64).alias(f"{other}_amount_minor"),
                              rule_id=pl.lit(None, pl.String), status=pl.lit(f"unmatched_{side}"),
                              reason=pl.lit("manually unmatched"))


def status_totals(ws: Workspace, first: date, last: date) -> list[tuple[str, str, int, int, int]]:
    """Rows of the latest portal runs of first..last per status and currency: (status, currency, rows, ours
    minor, portal minor), in `STATUSES` order."""
    with store.results_connection(ws) as con:
        found = con.execute("SELECT status, currency, count(*), sum(internal_amount_minor)::BIGINT, "
                            "sum(external_amount_minor)::BIGINT FROM recon_results WHERE recon = ? "
                            "AND business_date BETWEEN ? AND ? GROUP BY ALL", [NAME, first, last]).fetchall()
    return sorted(found, key=lambda r: (STATUSES.index(r[0]), r[1]))
