"""The job queue in Dagster: the worker sensor (run keys, batches, tags), worker runs processing real jobs on
the built-in sandbox, housekeeping, the wallet-low schedule and failed worker runs, on a real instance."""

import copy
import json
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

import definitions
from assets.jobqueue.jobs import DEFAULT_BATCH, JOB_IDS_TAG, RULE_OP, WORKER_OP
from ops_pipeline import audit
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.jobtypes import JOB_TYPES
from ops_pipeline.jobqueue.model import State
from ops_pipeline.jobqueue.queue import JobQueue
from resources.ops import OpsResource
from sensors.jobqueue import (
    BATCH_TAG,
    THRESHOLDS_ENV,
    jobqueue_worker_sensor,
    wallet_low_rule_schedule,
    wallet_thresholds,
)
from sensors.run_failure import run_failure_audit_sensor

DEFS = definitions.defs
RUN_KEY_TAG = "dagster/run_key"


@pytest.fixture
def home(sqlite_ws, monkeypatch):
    """OPS_HOME of an initialized workspace as the code location reads it; partners answered by the sandbox."""
    monkeypatch.setenv("OPS_HOME", str(sqlite_ws.home))
    for name in ("OPS_DATABASE_URL", "OPS_LAKE_URI", "OPS_PARTNER_URL", "OPS_BANK_URL", THRESHOLDS_ENV):
        monkeypatch.delenv(name, raising=False)
    return sqlite_ws.home


@pytest.fixture
def ops(home):
    return OpsResource(ops_home=str(home))


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def create(ws, type_name, priority="Medium", **changes):
    job, _ = service.create_job(ws, type=type_name, attributes=copy.deepcopy(JOB_TYPES[type_name].example) | changes,
                                priority=priority, actor="alice")
    return job


def tick(ops, instance):
    with dg.build_sensor_context(instance=instance, resources={"ops": ops}) as context:
        return jobqueue_worker_sensor(context)


def ids_of(request: dg.RunRequest) -> list[int]:
    return [int(i) for i in request.tags[JOB_IDS_TAG].split(",")]


def run(job: str, instance, **kwargs) -> dg.ExecuteInProcessResult:
    return DEFS.resolve_job_def(job).execute_in_process(instance=instance, **kwargs)


def launch(request: dg.RunRequest, instance) -> dg.ExecuteInProcessResult:
    """What the daemon does with a request: a run of the worker job with its config, tags and run key."""
    return run("jobqueue_worker_job", instance, run_config=request.run_config,
               tags={**request.tags, RUN_KEY_TAG: request.run_key})


def messages(instance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id)]


def test_definitions_hold_the_queue_jobs_sensor_and_schedules():
    assert DEFS.resolve_sensor_def("jobqueue_worker_sensor").job_name == "jobqueue_worker_job"
    housekeeping = DEFS.resolve_schedule_def("jobqueue_housekeeping_schedule")
    assert (housekeeping.job_name, housekeeping.cron_schedule) == ("jobqueue_housekeeping_job", "*/5 * * * *")
    rule = DEFS.resolve_schedule_def("wallet_low_rule_schedule")
    assert (rule.job_name, rule.cron_schedule) == ("wallet_low_rule_job", "*/15 * * * *")
    assert housekeeping.default_status == rule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_nothing_claimable_is_a_skip(sqlite_ws, ops, instance):
    assert tick(ops, instance).skip_message == "no claimable jobs"
    create(sqlite_ws, "manual", title="Call the bank")  # people take manual jobs, workers never do
    create(sqlite_ws, "principal_onboarding")  # awaiting approval
    expiring = datetime.now(UTC) + timedelta(seconds=0.3)
    service.create_job(sqlite_ws, type="voucher_restriction_push", attributes=JOB_TYPES["voucher_restriction_push"].example,
                       expires_at=expiring, actor="alice")
    time.sleep(0.4)  # past its expiry: never claimed, though the sweeper has not marked it yet
    assert service.queue(sqlite_ws).counts() == {"Created": 2, "Awaiting Approval": 1}
    assert tick(ops, instance).skip_message == "no claimable jobs"


def test_one_run_per_batch_with_keys_from_the_jobs_in_claim_order(sqlite_ws, ops, instance):
    medium = [create(sqlite_ws, "voucher_restriction_push").id for _ in range(DEFAULT_BATCH + 2)]
    high = create(sqlite_ws, "distributor_onboarding", priority="High").id
    first = tick(ops, instance).run_requests
    assert [ids_of(r) for r in first] == [[high, *medium[: DEFAULT_BATCH - 1]], medium[DEFAULT_BATCH - 1 :]]
    assert all(r.run_config["ops"] == {WORKER_OP: {"config": {"limit": DEFAULT_BATCH}}} for r in first)
    assert first[0].run_key.startswith(f"jobs-{high}-{medium[DEFAULT_BATCH - 2]}-")
    assert all(r.run_key == f"{r.tags[BATCH_TAG]}.0" for r in first)

    # a repeated tick (after a crash, or while the runs wait to start) asks for the very same runs
    assert [r.run_key for r in tick(ops, instance).run_requests] == [r.run_key for r in first]

    # a new job changes only the batch it joins
    late = create(sqlite_ws, "voucher_restriction_push", priority="Low").id
    second = tick(ops, instance).run_requests
    assert second[0].run_key == first[0].run_key
    assert ids_of(second[1]) == [*medium[DEFAULT_BATCH - 1 :], late] and second[1].run_key != first[1].run_key

    # a job back in the queue after a failed attempt is a new turn: a new key for its batch
    queue = JobQueue(sqlite_ws.engine, backoff_base=0.01, backoff_cap=0.01)
    [claimed] = queue.claim("elsewhere", limit=1)
    queue.fail(claimed.id, "elsewhere", "partner down")
    time.sleep(0.03)
    third = tick(ops, instance).run_requests
    assert ids_of(third[0]) == ids_of(first[0]) and third[0].run_key != first[0].run_key


def test_a_batch_whose_run_ended_without_taking_it_gets_the_next_generation(sqlite_ws, ops, instance):
    job = create(sqlite_ws, "voucher_restriction_push").id
    [request] = tick(ops, instance).run_requests
    assert request.run_key.endswith(".0") and ids_of(request) == [job]
    worker_job = DEFS.resolve_job_def("jobqueue_worker_job")
    started = instance.create_run_for_job(worker_job, run_config=request.run_config, status=dg.DagsterRunStatus.STARTED,
                                          tags={**request.tags, RUN_KEY_TAG: request.run_key})
    assert [r.run_key for r in tick(ops, instance).run_requests] == [request.run_key]  # under way: same key
    instance.report_run_failed(started)  # e.g. the database was down: the job is still waiting
    [retry] = tick(ops, instance).run_requests
    assert retry.run_key == request.run_key[:-1] + "1" and ids_of(retry) == [job]


def test_a_worker_run_processes_real_jobs_and_tags_and_logs_them(sqlite_ws, ops, instance):
    nobody = create(sqlite_ws, "fund_transfer_to_principal", principal_id="P-NOBODY")  # the bank answers 422
    onboarding = create(sqlite_ws, "principal_onboarding", priority="High")
    service.approve_job(sqlite_ws, onboarding.id, "bob")
    program = create(sqlite_ws, "gift_card_program_creation", priority="High")  # needs the principal
    distributor = create(sqlite_ws, "distributor_onboarding", priority="High")  # needs the program
    restriction = create(sqlite_ws, "voucher_restriction_push")
    [request] = tick(ops, instance).run_requests
    order = [onboarding.id, program.id, distributor.id, nobody.id, restriction.id]
    assert ids_of(request) == order

    result = launch(request, instance)
    assert result.success
    assert result.output_for_node(WORKER_OP) == {"claimed": 5, "completed": 4, "retried": 0, "failed": 1, "lost": 0}
    worker = f"dagster-{result.run_id}"
    for job_id in [onboarding.id, program.id, distributor.id, restriction.id]:
        done = service.get_job(sqlite_ws, job_id)
        assert (done.state, done.attempts, done.last_error) == (State.COMPLETED, 1, None)
        assert [(h["to_state"], h["actor"]) for h in done.history][-2:] == [("In Progress", worker), ("Completed", worker)]
    failed = service.get_job(sqlite_ws, nobody.id)
    assert failed.state == State.FAILED
    assert "answered 422: principal 'P-NOBODY' has no registered bank account" in failed.last_error

    assert instance.get_run_by_id(result.run_id).tags[JOB_IDS_TAG] == ",".join(map(str, order))
    logs = messages(instance, result.run_id)
    outcomes = ["completed", "completed", "completed", "failed", "completed"]
    assert [m for m in logs if m.startswith("job ") and "(" not in m] == [
        f"job {i}: {o}" for i, o in zip(order, outcomes, strict=True)]
    assert f"job {program.id} (gift_card_program_creation): associate_principals" in logs  # the queue's own lines
    assert not any("beanthere" in m for m in logs)  # UPI VPAs are never logged
    assert tick(ops, instance).skip_message == "no claimable jobs"


def test_a_run_launched_by_hand_tags_the_jobs_it_took(sqlite_ws, home, instance):
    first, second = (create(sqlite_ws, "voucher_restriction_push").id for _ in range(2))
    result = run("jobqueue_worker_job", instance, run_config={"ops": {WORKER_OP: {"config": {"limit": 1}}}})
    assert result.output_for_node(WORKER_OP)["completed"] == 1
    assert instance.get_run_by_id(result.run_id).tags[JOB_IDS_TAG] == str(first)
    # told to expect a job another worker has taken meanwhile, the run corrects its tag
    other = run("jobqueue_worker_job", instance, tags={JOB_IDS_TAG: str(first)})
    assert instance.get_run_by_id(other.run_id).tags[JOB_IDS_TAG] == str(second)
    idle = run("jobqueue_worker_job", instance, tags={JOB_IDS_TAG: str(first)})
    assert instance.get_run_by_id(idle.run_id).tags[JOB_IDS_TAG] == "none"


def test_housekeeping_rescues_and_expires_and_tags_the_jobs(sqlite_ws, home, instance):
    abandoned = create(sqlite_ws, "voucher_restriction_push").id
    JobQueue(sqlite_ws.engine).claim("dead-worker", limit=1, lease_seconds=0.1)
    expiring, _ = service.create_job(sqlite_ws, type="manual", attributes={"title": "Call"}, actor="alice",
                                     expires_at=datetime.now(UTC) + timedelta(seconds=0.2))
    time.sleep(0.3)
    result = run("jobqueue_housekeeping_job", instance)
    assert result.output_for_node("housekeep_jobs") == {"rescued": 1, "failed": 0, "expired": 1}
    assert service.get_job(sqlite_ws, abandoned).state == State.CREATED
    assert service.get_job(sqlite_ws, expiring.id).state == State.EXPIRED
    assert instance.get_run_by_id(result.run_id).tags[JOB_IDS_TAG] == f"{abandoned},{expiring.id}"
    quiet = run("jobqueue_housekeeping_job", instance)
    assert JOB_IDS_TAG not in instance.get_run_by_id(quiet.run_id).tags


def test_wallet_low_schedule_skips_without_thresholds_and_creates_one_job(sqlite_ws, home, instance, monkeypatch):
    context = dg.build_schedule_context(instance=instance)
    assert wallet_low_rule_schedule(context).skip_message == f"{THRESHOLDS_ENV} is not set: no wallet to watch"
    monkeypatch.setenv(THRESHOLDS_ENV, json.dumps([{"distributor_id": "D-LOW", "threshold": "100.00",
                                                    "target": "500.00"}]))
    request = wallet_low_rule_schedule(context)
    [config] = request.run_config["ops"][RULE_OP]["config"]["thresholds"]
    assert config == {"distributor_id": "D-LOW", "currency": "INR", "threshold": "100.00", "target": "500.00",
                      "priority": "High"}
    first = run("wallet_low_rule_job", instance, run_config=request.run_config)
    again = run("wallet_low_rule_job", instance, run_config=request.run_config)
    assert first.output_for_node(RULE_OP) == {"wallets": 1, "low": 1, "created": 1}
    assert again.output_for_node(RULE_OP) == {"wallets": 1, "low": 1, "created": 0}
    [job] = service.list_jobs(sqlite_ws, type="distributor_wallet_replenishment").jobs
    assert (job.attributes["amount"], job.created_by_kind) == ("500.00", "rule")
    assert instance.get_run_by_id(first.run_id).tags[JOB_IDS_TAG] == str(job.id)

    monkeypatch.setenv(THRESHOLDS_ENV, "[{")
    with pytest.raises(Exception, match=f"{THRESHOLDS_ENV}: not valid JSON"):
        wallet_thresholds()


def test_a_failed_worker_run_is_audited(sqlite_ws, home, instance, monkeypatch):
    monkeypatch.setenv("OPS_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/ops_no_such_database")
    result = run("jobqueue_worker_job", instance, raise_on_error=False)
    assert not result.success
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_audit_sensor", dagster_event=result.get_run_failure_event(),
        dagster_instance=instance, dagster_run=instance.get_run_by_id(result.run_id),
        resources={"ops": OpsResource(ops_home=str(sqlite_ws.home), database_url=sqlite_ws.settings.database_url)},
    ).for_run_failure()
    run_failure_audit_sensor(context)
    with sqlite_ws.engine.connect() as conn:
        [record] = audit.history(conn, "dagster_run", result.run_id)
    assert record["after"]["job"] == "jobqueue_worker_job"
    assert 'database "ops_no_such_database" does not exist' in record["after"]["step_errors"][WORKER_OP]
