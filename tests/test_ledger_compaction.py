"""Compaction of the log after live intake: fewer files, the same balances (now, `--as-of`, replay at an older
version within the retention), an empty change feed across it, intake and idempotency going on after it."""

from __future__ import annotations

from datetime import UTC, datetime

from ops_pipeline import audit
from ops_pipeline.lake.tables import BALANCE_OPERATIONS
from ops_pipeline.ledger import balances
from ops_pipeline.ledger.compaction import compact
from ops_pipeline.ledger.intake import commit
from ops_pipeline.ledger.live import FOLD_COLUMNS
from ops_pipeline.ledger.writer_state import Warm
from tests.factories import op

LOG = BALANCE_OPERATIONS.name
AS_OF = datetime(2026, 11, 1, 12, tzinfo=UTC)


def post(ws, state, *rows) -> list[str]:
    [result] = commit(ws, [[r | {"kind": k} for r, k in rows]], ["falcon"], state)
    return [o.status for o in result.outcomes]


def amounts(found: list[balances.Balance]) -> list[tuple]:
    return [(b.currency, b.confirmed_minor, b.settled_minor) for b in found]


def test_compaction_keeps_balances_and_replay_and_drops_files(ws):
    state = Warm(ws)
    for i in range(6):  # six group commits: six small log files
        date = "2026-11-01T10:00:00Z" if i % 2 else "2026-11-02T10:00:00Z"
        assert post(ws, state, (op(f"c{i}", f"{10 + i}.00", date=date), "confirmed"),
                    (op(f"c{i}", f"{10 + i}.00", date=date), "reconciled")) == ["accepted", "accepted"]
    old = ws.lake.latest_version(LOG)
    before = (amounts(balances.get_balances(ws, "M1")), amounts(balances.balances_as_of(ws, "M1", AS_OF)),
              balances.replay(ws, old).sort("merchant_id", "currency"))
    files = len(ws.lake.open(LOG).file_uris())
    assert files >= 6

    kept = {r.table: r for r in compact(ws, actor="test")}  # default retention: nothing vacuumed yet
    assert (kept[LOG].files_before, kept[LOG].files_after, kept[LOG].vacuumed) == (files, 1, 0)
    assert ws.lake.changes(LOG, old, ws.lake.latest_version(LOG), FOLD_COLUMNS).num_rows == 0
    assert balances.replay(ws, old).sort("merchant_id", "currency").equals(before[2])  # time travel holds

    [log] = [r for r in compact(ws, actor="test", retention_hours=0) if r.table == LOG]
    assert log.vacuumed == files  # the replaced small files are gone now
    after = (amounts(balances.get_balances(ws, "M1")), amounts(balances.balances_as_of(ws, "M1", AS_OF)),
             balances.replay(ws, ws.lake.latest_version(LOG)).sort("merchant_id", "currency"))
    assert after[:2] == before[:2] and after[2].equals(before[2])
    assert before[1] != before[0]  # as-of really filters
    assert balances.rebuild(ws).differences == []
    # the warm intake goes on: a repeat is a duplicate, a new operation goes in
    assert post(ws, state, (op("c0", "10.00", date="2026-11-02T10:00:00Z"), "confirmed"),
                (op("n1", "1.00"), "confirmed")) == ["duplicate", "accepted"]
    with ws.engine.connect() as conn:
        [_, last] = audit.history(conn, "ledger_log", "compact")
    assert last["actor"] == "test" and last["after"]["retention_hours"] == 0


def test_compact_log_job_on_its_schedule_and_the_cli_command(sqlite_ws, monkeypatch):
    import dagster as dg

    import definitions

    monkeypatch.setenv("OPS_HOME", str(sqlite_ws.home))
    for name in ("OPS_DATABASE_URL", "OPS_LAKE_URI", "OPS_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    state = Warm(sqlite_ws)
    for i in range(3):
        post(sqlite_ws, state, (op(f"c{i}", "1.00"), "confirmed"))
    schedule = definitions.defs.resolve_schedule_def("compact_log_schedule")
    assert (schedule.job_name, schedule.cron_schedule) == ("compact_log_job", "*/10 * * * *")
    with dg.instance_for_test() as instance:
        result = definitions.defs.resolve_job_def("compact_log_job").execute_in_process(instance=instance)
    assert result.output_for_node("compact_ledger_log")[LOG] == 1
    from click.testing import CliRunner

    from ops_pipeline.cli import cli

    out = CliRunner().invoke(cli, ["ledger", "compact", "--retention-hours", "0"])
    assert out.exit_code == 0, out.output
    assert f"{LOG}: 1 files -> 1, 3 vacuumed" in out.output  # the job's compaction left 3 files to vacuum
