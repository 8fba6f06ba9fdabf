"""Where reconciliation state lives: results in the Delta table `recon_results`, decisions in the database.

The lake is append-only here, so "replacing" a date is a newer run: every run of (recon, business_date)
appends all its rows under a new `run_id`, and readers take the latest run of the date (by `created_at`,
then `run_id`: the view `recon_results`, sql/views/recon_results.sql). Earlier runs stay readable as
history. Manual decisions are not lost by a re-run: they live in `recon_decisions` and every run applies
them, so the latest run carries them as `manual` rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import select

from ops_pipeline import audit
from ops_pipeline.analytics import SQL_DIR
from ops_pipeline.db.schema import recon_decisions
from ops_pipeline.errors import InvalidInput, NotFound
from ops_pipeline.lake.tables import RECON_RESULTS
from ops_pipeline.recon.engine import ACTIONS, Decision, ResultRow

if TYPE_CHECKING:
    import duckdb

    from ops_pipeline.workspace import Workspace

_ROW_FIELDS = ("recon", "business_date", "internal_ids", "external_ids", "rule_id", "status",
               "internal_amount_minor", "external_amount_minor", "currency", "reason", "decided_by", "note")
PARTS = 4  # Parquet files per run, written in parallel


def write_results(ws: Workspace, frame: pl.DataFrame, run_id: str, at: datetime) -> int:
    """Append one run's result rows (`engine.RESULT_SCHEMA`) in one commit; the lake version of that commit.

    The rows are written as `PARTS` Parquet files in parallel (`lake.stage`). The version is exact because
    every writer of `recon_results` holds the lock `recon_results` (`service.record`)."""
    rows = frame.select(
        pl.format("{}-{}", pl.lit(run_id), pl.int_range(pl.len(), dtype=pl.Int64)).alias("result_id"),
        *_ROW_FIELDS,
        (pl.col("internal_amount_minor") - pl.col("external_amount_minor")).alias("amount_difference_minor"),
        pl.lit(run_id).alias("run_id"),
        pl.lit(at, pl.Datetime("us", "UTC")).alias("created_at"))
    size = -(-rows.height // PARTS) or 1
    staged = ws.lake.stage(RECON_RESULTS.name, [rows.slice(i, size) for i in range(0, rows.height, size)])
    return ws.lake.commit(staged)


@contextmanager
def results_connection(ws: Workspace) -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB over `recon_results` with its views (`recon_results`, `recon_breaks`, ...): all a reader of
    results needs, without the rest of the lake (`analytics.connect` also folds the log and reads holds)."""
    with ws.lake.connect(RECON_RESULTS.name) as con:
        con.execute((SQL_DIR / "views" / "recon_results.sql").read_text())
        yield con


def latest_results(ws: Workspace, recon: str, business_date: date) -> list[ResultRow]:
    """The rows of the latest run of (recon, business_date); empty if it never ran."""
    with results_connection(ws) as con:
        found = con.execute(f"SELECT {', '.join(_ROW_FIELDS)} FROM recon_results "
                            "WHERE recon = $1 AND business_date = $2 ORDER BY result_id",
                            [recon, business_date]).fetchall()
    return [ResultRow(**{**dict(zip(_ROW_FIELDS, r, strict=True)), "internal_ids": tuple(r[2]),
                         "external_ids": tuple(r[3])}) for r in found]


def decide(ws: Workspace, recon: str, business_date: date, action: str, internal_ids: Sequence[str],
           external_ids: Sequence[str], note: str, actor: str) -> int:
    """Record an ops user's decision on the latest results of the date (audited); the next run applies it.

    match and unmatch name both sides; write_off names the records written off, on either side.
    """
    if action not in ACTIONS:
        raise InvalidInput(f"action must be one of {ACTIONS}, got {action!r}")
    if not note.strip():
        raise InvalidInput("note is required: say why")
    if not actor.strip():
        raise InvalidInput("actor is required")
    internal_ids, external_ids = sorted(set(internal_ids)), sorted(set(external_ids))
    if action != "write_off" and not (internal_ids and external_ids):
        raise InvalidInput(f"{action} needs internal_ids and external_ids")
    if not (internal_ids or external_ids):
        raise InvalidInput("write_off needs the ids written off")
    rows = latest_results(ws, recon, business_date)
    known = {"internal": {i for r in rows for i in r.internal_ids},
             "external": {i for r in rows for i in r.external_ids}}
    for side, ids in (("internal", internal_ids), ("external", external_ids)):
        unknown = sorted(set(ids) - known[side])
        if unknown:
            raise NotFound(f"{side} ids {unknown} are not in the results of {recon} on {business_date}")
    values = {"recon": recon, "business_date": business_date, "action": action, "internal_ids": internal_ids,
              "external_ids": external_ids, "note": note, "actor": actor, "at": datetime.now(UTC)}
    with ws.engine.begin() as conn:
        decision_id = conn.execute(recon_decisions.insert().values(values)).inserted_primary_key[0]
        audit.record(conn, actor=actor, entity_type="recon_decision", entity_id=str(decision_id),
                     action=action, after={**values, "business_date": business_date.isoformat()}, reason=note)
    return decision_id


def decisions(ws: Workspace, recon: str, business_date: date) -> list[Decision]:
    """The decisions on (recon, business_date), in the order they were taken."""
    query = (select(recon_decisions).where(recon_decisions.c.recon == recon,
                                          recon_decisions.c.business_date == business_date)
             .order_by(recon_decisions.c.id))
    with ws.read_engine.connect() as conn:
        return [Decision(r.action, tuple(r.internal_ids), tuple(r.external_ids), r.note, r.actor)
                for r in conn.execute(query)]
