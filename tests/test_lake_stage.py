"""Staged Parquet files of the fast ingest path stay invisible until their one commit (crash safety)."""

from datetime import UTC, datetime

import duckdb
import polars as pl

from ops_pipeline.lake.store import Lake
from ops_pipeline.lake.tables import QUARANTINE_RESOLUTIONS


def rows(lake: Lake) -> list[tuple]:
    con = duckdb.connect()
    return con.sql(f"SELECT quarantine_id, resolution FROM {lake.relation(con, QUARANTINE_RESOLUTIONS.name)} "
                   "ORDER BY quarantine_id").fetchall()


def test_staged_files_are_invisible_until_committed_then_all_appear_in_one_version(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    name = QUARANTINE_RESOLUTIONS.name
    at = datetime(2026, 12, 5, tzinfo=UTC)
    frame = pl.DataFrame({"quarantine_id": ["a", "b"], "resolution": ["ingested"] * 2, "ingest_id": ["i"] * 2,
                          "resolved_at": [at, at]})
    staged = lake.stage(name, [frame, frame.with_columns(quarantine_id=pl.lit("c"))])
    assert len(staged.actions) == 1  # small frames share one file
    assert rows(lake) == []  # a crash here leaves only files that no version refers to
    before = lake.latest_version(name)
    version = lake.commit(staged)
    assert version == before + 1
    assert rows(lake) == [("a", "ingested"), ("b", "ingested"), ("c", "ingested"), ("c", "ingested")]
    changes = lake.changes(name, before, version, ["quarantine_id"])
    assert sorted(changes.column("quarantine_id").to_pylist()) == ["a", "b", "c", "c"]
