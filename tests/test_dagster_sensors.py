"""The landing-file sensor and the run-failure sensor (audit and ticket), evaluated against a real Dagster
instance."""

import os
import time

import dagster as dg
import pytest

import definitions
from assets.ledger.assets import INGEST_OP
from ops_pipeline import audit
from ops_pipeline.ledger import balances
from ops_pipeline.tickets import tickets
from resources.ops import OpsResource
from sensors.ledger import MAX_FILES_PER_TICK, SETTLE_SECONDS, landing_files_sensor
from sensors.run_failure import run_failure_audit_sensor
from tests.factories import op, write_ops


@pytest.fixture
def ops(sqlite_ws):
    return OpsResource(ops_home=str(sqlite_ws.home))


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def tick(ops: OpsResource, instance, cursor: str | None = None):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"ops": ops}) as context:
        return landing_files_sensor(context)


def settle() -> None:
    time.sleep(SETTLE_SECONDS + 0.05)


def run_key(path, kind: str) -> str:
    st = os.stat(path)
    return f"{kind}:{path.name}:{st.st_mtime_ns}:{st.st_size}"


def files_of(request: dg.RunRequest) -> list[dict]:
    return request.run_config["ops"][INGEST_OP]["config"]["files"]


def test_nothing_new_is_a_skip(tmp_path, instance):
    result = tick(OpsResource(ops_home=str(tmp_path / "never-initialized")), instance)
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message.startswith("no new files in ")


def test_one_run_per_settled_file_with_deterministic_keys_and_a_forward_cursor(ops, instance, tmp_path):
    landing = ops.settings().landing_dir
    co1 = write_ops(landing / "confirmed" / "co1.csv", [op("o1", "1.00")])
    co2 = write_ops(landing / "confirmed" / "co2.parquet", [op("o2", "2.00")])
    ro1 = write_ops(landing / "reconciled" / "ro1.jsonl", [op("o1", "1.00")])
    (landing / "confirmed" / ".co3.csv").write_text("being written")
    (landing / "confirmed" / "notes.txt").write_text("not an input file")

    early = tick(ops, instance)
    assert isinstance(early, dg.SkipReason) and "still being written" in early.skip_message

    settle()
    first = tick(ops, instance)
    assert [r.run_key for r in first.run_requests] == [
        run_key(co1, "confirmed"), run_key(co2, "confirmed"), run_key(ro1, "reconciled")]
    assert [files_of(r) for r in first.run_requests] == [
        [{"path": str(co1), "kind": "confirmed"}], [{"path": str(co2), "kind": "confirmed"}],
        [{"path": str(ro1), "kind": "reconciled"}]]
    assert first.run_requests[2].tags == {"ops/file": "ro1.jsonl", "ops/kind": "reconciled"}

    assert isinstance(tick(ops, instance, first.cursor), dg.SkipReason)
    replayed = tick(ops, instance)  # a tick repeated from scratch asks for the very same runs
    assert [r.run_key for r in replayed.run_requests] == [r.run_key for r in first.run_requests]

    # moved in with an old mtime (mv and cp -p keep it): still after the cursor
    old = write_ops(tmp_path / "late.csv", [op("o9", "9.00")])
    os.utime(old, ns=(1_600_000_000 * 10**9, 1_600_000_000 * 10**9))
    late = old.rename(landing / "confirmed" / "late.csv")
    # rewritten in place: a new run key for the new content
    write_ops(co1, [op("o1", "1.00"), op("o4", "4.00")])
    settle()
    second = tick(ops, instance, first.cursor)
    assert [r.run_key for r in second.run_requests] == [run_key(late, "confirmed"), run_key(co1, "confirmed")]
    assert ":1600000000000000000:" in second.run_requests[0].run_key
    assert second.run_requests[1].run_key != first.run_requests[0].run_key
    assert isinstance(tick(ops, instance, second.cursor), dg.SkipReason)


def test_a_tick_takes_a_bounded_batch_and_the_next_tick_the_rest(ops, instance):
    folder = ops.settings().landing_dir / "confirmed"
    for i in range(MAX_FILES_PER_TICK + 5):
        write_ops(folder / f"co{i:02}.csv", [op(f"o{i}", "1.00")])
    settle()
    first = tick(ops, instance)
    second = tick(ops, instance, first.cursor)
    assert len(first.run_requests) == MAX_FILES_PER_TICK and len(second.run_requests) == 5
    names = [files_of(r)[0]["path"].rsplit("/", 1)[1] for r in [*first.run_requests, *second.run_requests]]
    assert names == [f"co{i:02}.csv" for i in range(MAX_FILES_PER_TICK + 5)]
    assert isinstance(tick(ops, instance, second.cursor), dg.SkipReason)


def test_the_run_a_sensor_requests_ingests_and_archives_its_file(ops, instance, sqlite_ws, monkeypatch):
    monkeypatch.setenv("OPS_HOME", str(sqlite_ws.home))
    co = write_ops(ops.settings().landing_dir / "confirmed" / "co.csv", [op("o1", "100.00")])
    settle()
    [request] = tick(ops, instance).run_requests
    result = definitions.defs.resolve_job_def("ledger_ingest_job").execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags)
    assert result.success
    [m1] = balances.get_balances(sqlite_ws, "M1")
    assert m1.confirmed_minor == 10000 - 320
    assert not co.exists() and (ops.settings().landing_dir / "archive" / "confirmed" / "co.csv").exists()


def test_a_failed_run_is_logged_and_audited(ops, instance, sqlite_ws, monkeypatch):
    monkeypatch.setenv("OPS_HOME", str(sqlite_ws.home))
    bad = ops.settings().landing_dir / "confirmed" / "bad.csv"
    bad.write_text("foo,bar\n1,2\n")
    result = definitions.defs.resolve_job_def("ledger_ingest_job").execute_in_process(
        run_config={"ops": {INGEST_OP: {"config": {"files": [{"path": str(bad), "kind": "confirmed"}]}}}},
        instance=instance, raise_on_error=False)
    assert not result.success
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_audit_sensor", dagster_event=result.get_run_failure_event(),
        dagster_instance=instance, dagster_run=instance.get_run_by_id(result.run_id), resources={"ops": ops},
    ).for_run_failure()
    run_failure_audit_sensor(context)
    with sqlite_ws.engine.connect() as conn:
        [record] = audit.history(conn, "dagster_run", result.run_id)
    assert (record["actor"], record["action"]) == ("dagster", "failed")
    assert record["after"]["job"] == "ledger_ingest_job"
    assert "lacks column(s) 'falcon_operation_id'" in record["after"]["step_errors"][INGEST_OP]
    assert bad.exists()  # a file that failed stays in landing for a fix
    [ticket] = tickets.list_tickets(sqlite_ws, tickets.Filters(source="run_failure")).tickets
    assert ticket["reference"] == result.run_id and "lacks column(s)" in ticket["description"]
    run_failure_audit_sensor(context)  # evaluated again: no second ticket
    assert len(tickets.list_tickets(sqlite_ws, tickets.Filters(source="run_failure")).tickets) == 1
