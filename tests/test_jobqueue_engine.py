"""The queue engine on SQLite and PostgreSQL: states, claim order, leases, retries, approvals, expiry, archive."""

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from ops_pipeline.db import make_engine, upgrade
from ops_pipeline.db.schema import job_history, jobs, jobs_archive
from ops_pipeline.errors import Conflict, InvalidInput, NotFound
from ops_pipeline.jobqueue.model import NewJob, State
from ops_pipeline.jobqueue.queue import Filters, FourEyes, JobQueue, LeaseLost


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)

    def __call__(self):
        return self.now

    def advance(self, seconds: float):
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def queue(engine, clock):
    return JobQueue(engine, clock=clock, rng=random.Random(1))


def new(type="manual", priority="Medium", **kw):
    return NewJob(type=type, attributes={"title": "t"}, created_by=kw.pop("created_by", "alice"), priority=priority, **kw)


def test_claim_takes_high_first_then_oldest_and_records_history(queue):
    low, med1, high, med2 = (queue.enqueue(new(priority=p))[0].id for p in ("Low", "Medium", "High", "Medium"))
    claimed = queue.claim("w1", limit=3)
    assert [j.id for j in claimed] == [high, med1, med2]
    assert {j.state for j in claimed} == {State.IN_PROGRESS}
    assert all(j.lease_owner == "w1" and j.attempts == 1 for j in claimed)
    assert [j.id for j in queue.claim("w2", limit=5)] == [low]
    assert queue.claim("w3") == []
    assert queue.complete([high], "w1") == [high]
    job = queue.get(high)
    assert (job.state, job.archived) == (State.COMPLETED, True)
    assert [(h["from_state"], h["to_state"], h["actor"]) for h in job.history] == [
        (None, "Created", "alice"), ("Created", "In Progress", "w1"), ("In Progress", "Completed", "w1")]


def test_illegal_transitions_are_refused_with_a_clear_error(queue):
    job, _ = queue.enqueue(new())
    with pytest.raises(Conflict, match=f"job {job.id}: cannot approve: state is Created"):
        queue.approve(job.id, "bob")
    queue.claim("w1")
    with pytest.raises(Conflict, match="cannot cancel: state is In Progress"):
        queue.cancel(job.id, "bob")
    queue.complete([job.id], "w1")
    with pytest.raises(Conflict, match="cannot retry: state is Completed"):
        queue.retry(job.id, "bob")
    with pytest.raises(NotFound, match="job 999999: does not exist"):
        queue.approve(999999, "bob")


def test_idempotency_key_returns_the_live_job_and_frees_once_finished(queue):
    first, created = queue.enqueue(new(idempotency_key="k1"))
    again, created_again = queue.enqueue(new(idempotency_key="k1", priority="High"))
    assert (created, created_again, again.id, again.priority) == (True, False, first.id, "Medium")
    queue.claim("w")
    queue.complete([first.id], "w")
    third, created_third = queue.enqueue(new(idempotency_key="k1"))
    assert created_third and third.id != first.id


def test_failures_retry_with_backoff_then_fail_with_the_error_kept(queue, clock):
    job, _ = queue.enqueue(new(max_attempts=2))
    queue.claim("w")
    after = queue.fail(job.id, "w", "partner 500")
    assert (after.state, after.attempts, after.last_error) == (State.CREATED, 1, "partner 500")
    assert timedelta(seconds=1) <= after.run_at - clock.now <= timedelta(seconds=3)  # 2 s x jitter
    assert queue.claim("w") == []  # not before the backoff
    clock.advance(3)
    queue.claim("w")
    final = queue.fail(job.id, "w", "partner 500 again")
    assert (final.state, final.archived, final.attempts) == (State.FAILED, True, 2)
    assert final.last_error == "partner 500 again"
    assert queue.fail.__doc__  # documented
    retried = queue.retry(job.id, "ops-bob")
    assert (retried.state, retried.attempts, retried.archived) == (State.CREATED, 0, False)


def test_non_retryable_failure_fails_at_once(queue):
    job, _ = queue.enqueue(new(max_attempts=5))
    queue.claim("w")
    assert queue.fail(job.id, "w", "bad input", retryable=False).state == State.FAILED


def test_rescuer_returns_jobs_of_dead_workers_or_fails_them_after_the_last_attempt(queue, clock):
    a, _ = queue.enqueue(new(max_attempts=3))
    b, _ = queue.enqueue(new(max_attempts=1))
    queue.claim("dead", limit=2, lease_seconds=30)
    clock.advance(10)
    assert queue.heartbeat([a.id, b.id], "dead", lease_seconds=30) == 2
    clock.advance(31)
    requeued, failed = queue.rescue()
    assert (requeued, failed) == ([a.id], [b.id])
    assert queue.get(b.id).last_error == "worker stopped (lease expired)"
    with pytest.raises(LeaseLost):
        queue.save_progress(a.id, "dead", {"x": 1})
    assert queue.complete([a.id], "dead") == []  # a late completion by the dead worker is ignored
    clock.advance(10)
    [again] = queue.claim("w2")
    assert (again.id, again.attempts) == (a.id, 2)


def test_expired_jobs_are_never_claimed_and_the_sweeper_archives_them(queue, clock):
    soon = clock.now + timedelta(minutes=5)
    job, _ = queue.enqueue(new(expires_at=soon))
    waiting, _ = queue.enqueue(new(expires_at=soon, needs_approval=True))
    clock.advance(301)
    assert queue.claim("w") == []
    assert sorted(queue.sweep_expired()) == sorted([job.id, waiting.id])
    assert queue.get(job.id).state == State.EXPIRED
    with pytest.raises(InvalidInput, match=r"expires_at: .* is not in the future"):
        queue.enqueue(new(expires_at=clock.now - timedelta(seconds=1)))


def test_approval_needs_four_eyes_and_rejection_a_reason(queue):
    job, _ = queue.enqueue(new(needs_approval=True, created_by="alice"))
    assert job.state == State.AWAITING_APPROVAL
    assert queue.claim("w") == []
    with pytest.raises(FourEyes, match="approver 'alice' created it"):
        queue.approve(job.id, "alice")
    approved = queue.approve(job.id, "bob")
    assert (approved.state, approved.approved_by) == (State.CREATED, "bob")
    other, _ = queue.enqueue(new(needs_approval=True))
    with pytest.raises(InvalidInput, match="reason"):
        queue.reject(other.id, "bob", " ")
    rejected = queue.reject(other.id, "bob", "tenant not verified")
    assert (rejected.state, rejected.last_error) == (State.FAILED, "rejected: tenant not verified")


def test_list_filters_and_cursor_over_live_and_archived_jobs(queue):
    ids = [queue.enqueue(new(type=t, priority=p))[0].id for t, p in
           (("a", "High"), ("b", "Low"), ("a", "Low"), ("b", "High"))]
    queue.claim("w")
    queue.complete([ids[0]], "w")
    assert [j.id for j in queue.list(Filters(type="a"))] == [ids[2], ids[0]]
    assert [j.id for j in queue.list(Filters(state="Completed"))] == [ids[0]]
    assert [j.id for j in queue.list(Filters(priority="High", state="Created"))] == [ids[3]]
    page1 = queue.list(Filters(), limit=2)
    page2 = queue.list(Filters(), after_id=page1[-1].id, limit=2)
    assert [j.id for j in page1 + page2] == sorted(ids, reverse=True)
    with pytest.raises(InvalidInput, match="state: 'Done' is not one of"):
        queue.list(Filters(state="Done"))
    with pytest.raises(InvalidInput, match="priority: 'Urgent' is not one of High, Medium, Low"):
        queue.enqueue(new(priority="Urgent"))


def test_enqueue_many_skips_live_keys_and_writes_history(queue, engine):
    queue.enqueue(new(idempotency_key="dup"))
    ids = queue.enqueue_many([new(idempotency_key="dup"), *[new(idempotency_key=f"k{i}") for i in range(500)]])
    assert len(ids) == 500
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(jobs)).scalar_one() == 501
        assert conn.execute(select(func.count()).select_from(job_history)).scalar_one() == 501
        assert conn.execute(select(func.count()).select_from(jobs_archive)).scalar_one() == 0


def test_concurrent_workers_never_claim_the_same_job(queue):
    queue.enqueue_many([new() for _ in range(300)])
    seen: list[int] = []
    lock = threading.Lock()

    def work(name):
        while batch := queue.claim(name, limit=7):
            queue.complete([j.id for j in batch], name)
            with lock:
                seen.extend(j.id for j in batch)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 300 == len(set(seen))
    assert queue.counts() == {}
