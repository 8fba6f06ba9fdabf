"""Job dependencies on SQLite and PostgreSQL: a job runs only after its prerequisites Completed, fails with
their reason when one ends otherwise (transitively, audited), and claims still walk the partial index."""

import random
import threading
import time

import pytest
from sqlalchemy import insert, update

from ops_pipeline.db.schema import job_dependencies, jobs
from ops_pipeline.errors import Conflict, InvalidInput
from ops_pipeline.jobqueue.model import State
from ops_pipeline.jobqueue.queue import JobQueue
from tests.test_jobqueue_engine import Clock, engine, new  # noqa: F401 (fixture)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def queue(engine, clock):  # noqa: F811
    return JobQueue(engine, clock=clock, rng=random.Random(1))


def make(queue, *after, **kw):
    return queue.enqueue(new(depends_on=tuple(after), **kw))[0].id


def claim_ids(queue, worker="w1"):
    return [j.id for j in queue.claim(worker, limit=10)]


def last_reason(queue, job_id):
    return queue.get(job_id).history[-1]["reason"]


def test_a_chain_runs_in_order_and_a_job_waits_for_all_its_prerequisites(queue):
    a, b = make(queue), make(queue)
    c = make(queue, a, b, priority="High")
    d = make(queue, c, priority="High")
    assert (queue.get(c).depends_on, queue.get(c).waiting, queue.get(d).waiting) == ([a, b], 2, 1)
    assert queue.get(c).history[0]["reason"] == f"created, after jobs {a}, {b}"
    assert queue.claimable() == 2 and [i for i, _ in queue.peek(10)] == [a, b]
    assert claim_ids(queue) == [a, b]
    assert queue.complete([a], "w1") == [a]
    assert (queue.get(c).waiting, claim_ids(queue, "w2")) == (1, [])
    assert queue.complete([b], "w1") == [b]
    assert queue.get(c).waiting == 0
    assert claim_ids(queue, "w2") == [c]  # d still waits for c
    assert queue.complete([c], "w2") == [c]
    assert claim_ids(queue, "w3") == [d]
    # a finished (archived) Completed prerequisite counts as done from the start
    assert queue.get(make(queue, a)).waiting == 0


def test_a_failed_prerequisite_fails_its_dependents_transitively_with_its_reason(queue):
    a = make(queue)
    b, side = make(queue, a), make(queue, a, type="principal_onboarding", needs_approval=True)
    c = make(queue, b)
    unrelated = make(queue)
    queue.claim("w1")
    queue.fail(a, "w1", "bank said no", retryable=False)
    first = f"prerequisite job {a} ended Failed: attempt 1 of 3 failed: bank said no"
    for job_id in (b, side):
        job = queue.get(job_id)
        assert (job.state, job.archived, job.last_error) == (State.FAILED, True, first)
        assert job.history[-1] == {**job.history[-1], "to_state": "Failed", "actor": "w1", "reason": first}
    assert queue.get(side).history[-1]["from_state"] == "Awaiting Approval"
    assert queue.get(c).last_error == f"prerequisite job {b} ended Failed: {first}"
    assert queue.get(unrelated).state == State.CREATED


@pytest.mark.parametrize("ending", ["cancel", "reject", "expire", "rescue"])
def test_every_way_of_ending_otherwise_fails_the_dependents(queue, clock, ending):
    a = make(queue, needs_approval=ending == "reject", expires_at=clock.now.replace(hour=10), max_attempts=1)
    b = make(queue, a)
    if ending == "cancel":
        queue.cancel(a, "bob", "not needed")
        expected = f"prerequisite job {a} ended Failed: cancelled: not needed"
    elif ending == "reject":
        queue.reject(a, "bob", "wrong bank")
        expected = f"prerequisite job {a} ended Failed: rejected: wrong bank"
    elif ending == "expire":
        clock.advance(3600)
        assert queue.sweep_expired() == [a]
        expected = f"prerequisite job {a} ended Expired: expired before it ran"
    else:
        queue.claim("w1", lease_seconds=10)
        clock.advance(60)
        assert queue.rescue() == ([], [a])
        expected = f"prerequisite job {a} ended Failed: lease expired after the last attempt"
    job = queue.get(b)
    assert (job.state, job.last_error, last_reason(queue, b)) == (State.FAILED, expected, expected)


def test_prerequisites_must_exist_and_not_have_ended_otherwise(queue):
    with pytest.raises(InvalidInput, match="dependsOn: job 999 does not exist"):
        make(queue, 999)
    a = make(queue)
    queue.cancel(a, "bob")
    with pytest.raises(Conflict, match=f"dependsOn: job {a} ended Failed; a job waiting for it would never run"):
        make(queue, a)
    assert queue.counts() == {}  # nothing was created


def test_retry_re_checks_the_prerequisites(queue):
    a = make(queue, max_attempts=1)
    b = make(queue, a)
    queue.claim("w1")
    queue.fail(a, "w1", "timeout")
    with pytest.raises(Conflict, match=f"job {a} ended Failed"):
        queue.retry(b, "bob")
    queue.retry(a, "bob")
    assert queue.retry(b, "bob").waiting == 1
    assert claim_ids(queue) == [a]
    queue.complete([a], "w1")
    assert claim_ids(queue) == [b]


def test_a_person_cannot_take_a_manual_job_before_its_prerequisites(queue):
    a = make(queue)
    b = make(queue, a)
    with pytest.raises(Conflict, match=f"job {b}: waits for 1 prerequisite job"):
        queue.take(b, "carol")
    queue.take(a, "carol")
    queue.complete([a], "carol")
    assert queue.take(b, "carol").state == State.IN_PROGRESS


def test_pending_ignores_jobs_blocked_on_a_job_no_worker_runs(queue):
    a = make(queue, type="principal_onboarding", needs_approval=True)
    make(queue, a, type="gift_card_program_creation")
    assert queue.pending(["gift_card_program_creation"]) == 0  # a pool --until-idle would stop


def test_the_housekeeping_sweep_settles_what_a_finish_missed(queue, engine):  # noqa: F811
    a = make(queue)
    b, c, d = make(queue, a), make(queue), make(queue)
    queue.claim("w1")
    queue.complete([a], "w1")
    queue.cancel(c, "bob")
    with engine.begin() as conn:  # as if the finishing transactions had not seen b's and d's prerequisites
        conn.execute(update(jobs).where(jobs.c.id == b).values(waiting=1))
        conn.execute(insert(job_dependencies).values(job_id=d, prerequisite_id=c))
        conn.execute(update(jobs).where(jobs.c.id == d).values(waiting=1, depends_on=[c]))
    assert queue.claimable() == 0
    assert queue.settle_dependencies() == ([b], [d])
    assert queue.get(d).last_error == f"prerequisite job {c} ended Failed: cancelled"
    assert last_reason(queue, d) == f"prerequisite job {c} ended Failed: cancelled"
    assert claim_ids(queue, "w2") == [b]
    assert queue.settle_dependencies() == ([], [])


def test_dependents_created_while_their_prerequisites_complete_are_never_stranded(queue):
    """Each new job depends on the previous one, created while workers complete them: none may be left
    waiting for a prerequisite that finished (the finish must see the dependent, or the creation the
    finish). No housekeeping runs here."""
    stop = threading.Event()
    done: list[int] = []

    def work(name):
        while not stop.is_set() or queue.pending(["manual"]):
            batch = queue.claim(name, limit=3)
            done.extend(queue.complete([j.id for j in batch], name))
            if not batch:
                time.sleep(0.001)

    workers = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in workers:
        t.start()
    previous = make(queue)
    for _ in range(150):
        previous = make(queue, previous)
    stop.set()
    for t in workers:
        t.join(timeout=60)
    assert queue.counts() == {} and len(done) == 151


def test_the_claim_still_walks_the_partial_index(queue, engine):  # noqa: F811
    if not queue.postgres:
        pytest.skip("the plan is PostgreSQL's")  # SQLite: see the next test
    queue.enqueue_many([new() for _ in range(3000)])
    head = make(queue)
    make(queue, head)
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE jobs")
        sql = "EXPLAIN " + queue_claim_sql().replace("%(now)s", "now()").replace("%(lease)s", "now()")
        sql = sql.replace("%(worker)s", "'w'").replace("%(limit)s", "1")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(sql))
    assert "ix_jobs_claim" in plan and "Sort" not in plan, plan


def test_sqlite_claims_through_the_partial_index(queue, engine):  # noqa: F811
    if queue.postgres:
        pytest.skip("PostgreSQL: see the previous test")
    from sqlalchemy import select

    query = select(jobs.c.id).where(queue._claimable(queue.clock(), None)).order_by(jobs.c.priority, jobs.c.id)
    with engine.connect() as conn:
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        plan = " ".join(str(r) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
    assert "ix_jobs_claim" in plan, plan


def queue_claim_sql():
    from ops_pipeline.jobqueue.queue import _PG_CLAIM

    return _PG_CLAIM
