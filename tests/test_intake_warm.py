"""The intake committer's warm state follows commits it did not make (files, other processes), on SQLite and
PostgreSQL; its key index answers exactly."""

from __future__ import annotations

import duckdb
import polars as pl

from ops_pipeline.lake.tables import BALANCE_OPERATIONS
from ops_pipeline.ledger import ingest, merchants, writer_state
from ops_pipeline.ledger.intake import commit
from ops_pipeline.ledger.writer_state import Warm, _Index, connect, op_keys
from tests.factories import MERCHANTS, op, write_merchants, write_ops


def post(ws, state, *rows) -> list[tuple]:
    [result] = commit(ws, [[r | {"kind": "confirmed"} for r in rows]], ["falcon"], state)
    return [(o.falcon_operation_id, o.status, o.ingest_id) for o in result.outcomes]


def test_warm_state_sees_file_ingests_and_context_loads_between_its_commits(ws, tmp_path):
    state = Warm(ws)
    [(_, status, first)] = post(ws, state, op("a1", "10.00"))
    assert status == "accepted"
    # another writer (a file) takes in b1 and repeats a1: the warm index learns b1 from the log's new files
    taken = ingest.ingest_file(ws, write_ops(tmp_path / "co.csv", [op("b1", "5.00"), op("a1", "10.00")]),
                               "confirmed")
    assert (taken.ingested, taken.duplicates) == (1, 1)
    [b1, a1, c1] = post(ws, state, op("b1", "5.00"), op("a1", "10.00"), op("c1", "1.00"))
    assert (b1, a1) == (("b1", "duplicate", taken.ingest_id), ("a1", "duplicate", first))
    assert c1[:2] == ("c1", "accepted")
    # a second warm committer (another API worker) catches up with the first one's commits
    assert post(ws, Warm(ws), op("c1", "1.00"))[0][:2] == ("c1", "duplicate")
    # a merchant loaded after the state was warm is known to its next commit
    assert post(ws, state, op("d1", "1.00", psp_id="psp9"))[0][1] == "rejected"
    merchants.load(ws, write_merchants(tmp_path / "m.csv", [*MERCHANTS, ("psp9", "lm1", "s1", "EUR", "M9", "",
                                                                          "0", "0")]))
    assert post(ws, state, op("d1", "1.00", psp_id="psp9"))[0][1] == "accepted"
    con = duckdb.connect()
    log = ws.lake.relation(con, BALANCE_OPERATIONS.name)
    assert con.sql(f"SELECT falcon_operation_id, count(*) FROM {log} WHERE type <> 'psp_fee' "
                   "GROUP BY ALL ORDER BY 1").fetchall() == [("a1", 1), ("b1", 1), ("c1", 1), ("d1", 1)]


def test_key_index_runs_and_recent_keys_answer_exactly(monkeypatch):
    monkeypatch.setattr(_Index, "RECENT", 4)
    index = _Index(pl.col("k"))
    index.add(pl.Series(range(0, 1000, 2)))  # a run
    for k in (1001, 1003, 1005, 1007, 1009, 7):  # recent keys, then a run of them past RECENT
        index.add(pl.Series([k]))
    assert index.contains(pl.Series([0, 2, 998, 1, 999, 1001, 1009, 7, 1002, -5, 10**12])).to_list() == [
        True, True, True, False, False, True, True, True, False, False, False]


def test_op_keys_hashed_in_python_equal_duckdbs_macro(monkeypatch):
    ids = pl.DataFrame({"falcon_operation_id": ["a", None, "é€x", *(f"op{i}" for i in range(50))]})
    con = connect()
    small = op_keys(con, "CO", ids)
    monkeypatch.setattr(writer_state, "PYTHON_KEYS", 0)  # the DuckDB path, as for a file
    assert small.equals(op_keys(con, "CO", ids))
    assert small["op_key"][:2].to_list() == [1273161221907354665, None]
