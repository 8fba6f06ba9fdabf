"""Run a reconciliation for a business date: match with the decisions taken so far, then record the run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from ops_pipeline import audit
from ops_pipeline.lake.tables import RECON_RESULTS
from ops_pipeline.recon import store
from ops_pipeline.recon.engine import STATUSES, ResultRow, match_frame, result_rows
from ops_pipeline.recon.rules import Recon

if TYPE_CHECKING:
    from ops_pipeline.workspace import Workspace


@dataclass(frozen=True)
class RunSummary:
    """One run: its result frame (`engine.RESULT_SCHEMA`), and per status the row count and internal,
    external and difference amounts."""

    recon: str
    business_date: date
    run_id: str | None  # None for a dry run
    lake_version: int | None
    frame: pl.DataFrame
    counts: dict[str, int] = field(init=False)
    amounts: dict[str, dict[str, int]] = field(init=False)

    def __post_init__(self) -> None:
        totals = {r["status"]: r for r in self.frame.group_by("status").agg(
            pl.len().alias("count"), pl.col("internal_amount_minor").sum().alias("internal_minor"),
            pl.col("external_amount_minor").sum().alias("external_minor")).iter_rows(named=True)}
        zero = {"count": 0, "internal_minor": 0, "external_minor": 0}
        object.__setattr__(self, "counts", {s: totals.get(s, zero)["count"] for s in STATUSES})
        object.__setattr__(self, "amounts", {s: {
            "internal_minor": (t := totals.get(s, zero))["internal_minor"],
            "external_minor": t["external_minor"],
            "difference_minor": t["internal_minor"] - t["external_minor"],
        } for s in STATUSES})

    @cached_property
    def rows(self) -> tuple[ResultRow, ...]:
        """The result rows, built on first use."""
        return tuple(result_rows(self.frame))

    @property
    def matched(self) -> list[ResultRow]:
        """Matched pairs: by a rule (with or without difference) or by hand."""
        return [r for r in self.rows if r.status in ("matched", "matched_with_difference")
                or (r.status == "manual" and r.internal_ids and r.external_ids)]

    @property
    def unmatched_internal(self) -> list[ResultRow]:
        return [r for r in self.rows if r.status == "unmatched_internal"]

    @property
    def unmatched_external(self) -> list[ResultRow]:
        return [r for r in self.rows if r.status == "unmatched_external"]


def run(ws: Workspace, recon: Recon, business_date: date, internal: pl.DataFrame | pa.Table,
        external: pl.DataFrame | pa.Table, *, actor: str, dry_run: bool = False) -> RunSummary:
    """Match the date's records with its decisions and, unless `dry_run`, append the run (superseding
    earlier runs of the date)."""
    decided = store.decisions(ws, recon.name, business_date)
    frame = match_frame(internal, external, recon, business_date, decided)
    if dry_run:
        return RunSummary(recon.name, business_date, None, None, frame)
    return record(ws, recon, business_date, frame, actor=actor)


def record(ws: Workspace, recon: Recon, business_date: date, frame: pl.DataFrame, *,
           actor: str) -> RunSummary:
    """Append a run's rows as the latest run of the date (audited). Every writer of `recon_results` takes
    its one lock, so the commit's version is exact and runs commit in `created_at` order."""
    with ws.lock(RECON_RESULTS.name):
        at = datetime.now(UTC)
        run_id = f"{at:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"  # sorts by time
        version = store.write_results(ws, frame, run_id, at)
    summary = RunSummary(recon.name, business_date, run_id, version, frame)
    with ws.engine.begin() as conn:
        audit.record(conn, actor=actor, entity_type="recon_run", entity_id=run_id, action="run",
                     after={"recon": recon.name, "business_date": business_date.isoformat(),
                            "lake_version": version, "counts": summary.counts})
    return summary
