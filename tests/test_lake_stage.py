"""Staged Parquet files of the fast ingest path stay invisible until their one commit (crash safety)."""

from datetime import UTC, datetime

import duckdb
import polars as pl
from deltalake import DeltaTable, write_deltalake

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


def test_tables_checkpoint_every_10_commits_and_an_older_table_is_given_the_property(tmp_path):
    """Checkpoints keep a handle's update (and so every commit) cheap; a table made before the property keeps
    its rows, its versions and the change feed when `ensure` adds it."""
    root = tmp_path / "lake"
    lake, spec = Lake(str(root)), QUARANTINE_RESOLUTIONS
    at = datetime(2026, 12, 5, tzinfo=UTC)
    frame = pl.DataFrame({"quarantine_id": ["a"], "resolution": ["ingested"], "ingest_id": ["i"],
                          "resolved_at": [at]})
    uri = lake.table_uri(spec.name)
    write_deltalake(uri, spec.schema.empty_table(),
                    configuration={"delta.enableChangeDataFeed": "true"})  # as tables were made before
    for i in range(12):
        write_deltalake(uri, frame.with_columns(quarantine_id=pl.lit(f"q{i}")).to_arrow(), mode="append")
    log = root / spec.path / "_delta_log"
    assert not list(log.glob("*.checkpoint.parquet"))  # delta-rs' default: every 100 commits
    lake.ensure(spec)
    table = DeltaTable(lake.table_uri(spec.name))
    assert table.metadata().configuration["delta.checkpointInterval"] == "10"
    assert table.version() == 13  # the property is one commit of its own
    for i in range(12, 19):
        lake.commit(lake.stage(spec.name, [frame.with_columns(quarantine_id=pl.lit(f"q{i}"))]))
    assert [p.name for p in log.glob("*.checkpoint.parquet")] == [f"{19:020d}.checkpoint.parquet"]
    assert [r[0] for r in rows(lake)] == [f"q{i}" for i in sorted(range(19), key=str)]
    assert len(lake.changes(spec.name, 0, 20, ["quarantine_id"])) == 19
    assert DeltaTable(lake.table_uri(spec.name), version=5).to_pyarrow_table().num_rows == 5
    lake.ensure(spec)  # once given, nothing more is committed
    assert DeltaTable(lake.table_uri(spec.name)).version() == 20
