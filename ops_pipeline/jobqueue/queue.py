"""The queue engine: enqueue, claim, progress, finish, approvals, rescue and expiry over the `jobs` tables.

Live jobs stay in `jobs`; a job that finishes (Completed, Failed, Expired) moves to `jobs_archive` in the
same transaction, so the table that claims scan stays small. Every transition appends to `job_history`.

PostgreSQL enqueues, claims and completes in one statement each (claims: `FOR UPDATE SKIP LOCKED` over the
partial index `ix_jobs_claim`), and `vacuum` (housekeeping) clears the dead rows claims would otherwise walk
over; SQLite runs the same operations inside its write-locking transactions.

Dependencies: a job may name prerequisite jobs (`job_dependencies`); its `waiting` counts those not yet
Completed, and only jobs at 0 are claimable (the claim index covers them only). A job completing lowers
its dependents' count, and a job ending otherwise (Failed, Expired; rejected and cancelled jobs are Failed)
fails its not-started dependents with its reason, transitively, both in the transaction that finishes it.
`settle_dependencies` (housekeeping) re-checks waiting jobs as a safety net.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    delete,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ops_pipeline.db.schema import job_dependencies, job_history, jobs, jobs_archive
from ops_pipeline.db.types import UTCDateTime
from ops_pipeline.errors import Conflict, InvalidInput, NotFound, OpsError
from ops_pipeline.jobqueue.model import (
    CREATOR_KINDS,
    FINISHED,
    NOT_STARTED,
    PRIORITIES,
    Job,
    NewJob,
    State,
    check_transition,
    priority_rank,
)
from ops_pipeline.observability import metrics, tracing
from ops_pipeline.observability.timing import TimedCursor

JOB_COLUMNS = [c.name for c in jobs.columns]
_COLS = ", ".join(JOB_COLUMNS)
_DATETIMES = [i for i, c in enumerate(jobs.columns) if isinstance(c.type, UTCDateTime)]

# PostgreSQL runs the hot paths (enqueue_many, claim, complete) as one statement each, sent through the
# driver's cursor in autocommit mode: the statement is its own transaction, so one round trip, and none of
# SQLAlchemy's per-statement work, which cost more CPU than the rest of a claim. Statements use the
# driver's %(name)s parameters.

# A batch this big can change the table more than the planner's statistics know: with the old ones, a
# claim may sort every Created row instead of walking `ix_jobs_claim` (milliseconds instead of microseconds).
ANALYZE_AFTER = 1000
# Every claim and finish leaves a dead row version in `jobs`, and dead entries in `ix_jobs_claim` that each
# claim walks over until VACUUM removes them: claims slow down in proportion. Autovacuum does this where it
# runs; `vacuum` (housekeeping) makes sure of it once this many have piled up.
VACUUM_AFTER = 10_000
_PG_NEW = {  # column -> array type: what `_values` varies per job; the rest is the same for all
    "type": "text",
    "attributes": "text",
    "priority": "smallint",
    "state": "text",
    "expires_at": "timestamptz",
    "created_by": "text",
    "created_by_kind": "text",
    "idempotency_key": "text",
    "max_attempts": "int",
}


def _pg_enqueue(returning: str) -> str:
    """Insert the jobs given as arrays (skipping live idempotency keys) and their history."""
    return f"""
        WITH new AS (
            INSERT INTO jobs ({", ".join(_PG_NEW)}, attempts, run_at, progress, created_at, updated_at)
            SELECT {", ".join(f"{c}::json" if c == "attributes" else c for c in _PG_NEW)},
                   0, %(now)s, '{{}}', %(now)s, %(now)s
            FROM unnest({", ".join(f"%({c})s::{t}[]" for c, t in _PG_NEW.items())})
                 AS new({", ".join(_PG_NEW)})
            ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING *
        ), noted AS (
            INSERT INTO job_history (job_id, at, from_state, to_state, actor, reason)
            SELECT id, %(now)s, NULL, state, created_by, 'created' FROM new
        )
        SELECT {returning} FROM new ORDER BY id
    """


def _pg_claim(types_filter: str) -> str:
    """Pick (`FOR UPDATE SKIP LOCKED` over `ix_jobs_claim`), claim and record; returns the claimed jobs."""
    return f"""
        WITH picked AS (
            SELECT id FROM jobs
            WHERE state = '{State.CREATED}' AND waiting = 0 AND run_at <= %(now)s
                  AND (expires_at IS NULL OR expires_at > %(now)s) {types_filter}
            ORDER BY priority, id
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE jobs SET state = '{State.IN_PROGRESS}', lease_owner = %(worker)s,
                            lease_expires_at = %(lease)s, attempts = jobs.attempts + 1, updated_at = %(now)s,
                            started_at = coalesce(jobs.started_at, %(now)s)
            FROM picked WHERE jobs.id = picked.id
            RETURNING jobs.*
        ), noted AS (
            INSERT INTO job_history (job_id, at, from_state, to_state, actor, reason)
            SELECT id, %(now)s, '{State.CREATED}', '{State.IN_PROGRESS}', %(worker)s, 'claimed' FROM claimed
        )
        SELECT {_COLS} FROM claimed
    """


def _pg_archive(guard: str, last_error: bool, release: bool = False) -> str:
    """Move the jobs `%(ids)s` still matching `guard` to the archive as `%(state)s`, with their history;
    with `release` (Completed), their dependents' `waiting` counts go down by the prerequisites done."""
    finished = {
        "state": "%(state)s",
        "finished_at": "%(now)s",
        "updated_at": "%(now)s",
        "lease_owner": "NULL",
        "lease_expires_at": "NULL",
    }
    if last_error:
        finished["last_error"] = "%(error)s"
    cols = ", ".join(finished.get(c, c) for c in JOB_COLUMNS)
    return f"""
        WITH done AS (DELETE FROM jobs WHERE id = ANY(%(ids)s) {"AND " + guard if guard else ""}
                      RETURNING {_COLS}),
             kept AS (INSERT INTO jobs_archive ({_COLS}, archived_at) SELECT {cols}, %(now)s FROM done),
             noted AS (INSERT INTO job_history (job_id, at, from_state, to_state, actor, reason)
                       SELECT id, %(now)s, state, %(state)s, %(actor)s, %(reason)s FROM done)
             {_PG_RELEASE if release else ""}
        SELECT id FROM done
    """


_PG_RELEASE = """, released AS (
                UPDATE jobs SET waiting = jobs.waiting - r.n, updated_at = %(now)s
                FROM (SELECT d.job_id, count(*) AS n
                      FROM job_dependencies d JOIN done ON d.prerequisite_id = done.id GROUP BY d.job_id) r
                WHERE jobs.id = r.job_id)"""


_PG_ENQUEUE = _pg_enqueue("id")
_PG_ENQUEUE_ONE = _pg_enqueue(_COLS)
_PG_LIVE_KEY = f"SELECT {_COLS} FROM jobs WHERE idempotency_key = %(key)s"
_PG_CLAIM = _pg_claim("")
_PG_CLAIM_TYPES = _pg_claim("AND type = ANY(%(types)s)")
_HELD = f"state = '{State.IN_PROGRESS}' AND lease_owner = %(actor)s"
# Two statements, one round trip and one transaction: the first locks the jobs, waiting for any transaction
# creating a dependent of them (it holds them FOR KEY SHARE), so that the second, whose snapshot is taken
# after, sees that dependent and lowers its count. The release is exactly once: it joins the deleted rows.
_PG_COMPLETE = (
    f"SELECT id FROM jobs WHERE id = ANY(%(ids)s) AND {_HELD} ORDER BY id FOR UPDATE;"
    + _pg_archive(_HELD, last_error=False, release=True)
)


def _pg_array(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal (`{"a","b",NULL}`): parsed once by the server, however long. Values that
    repeat (types, states, creators) are quoted once."""
    quoted: dict[Any, str] = {None: "NULL"}
    items = []
    for v in values:
        if isinstance(v, dict):
            items.append(_pg_quote(json.dumps(v)))
            continue
        item = quoted.get(v)
        if item is None:
            item = quoted[v] = _pg_quote(v.isoformat() if isinstance(v, datetime) else str(v))
        items.append(item)
    return "{" + ",".join(items) + "}"


def _pg_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pg_job(values: tuple) -> Job:
    """A job from a driver's row (columns in `JOB_COLUMNS` order), times in UTC as `UTCDateTime` gives."""
    row = list(values)
    for i in _DATETIMES:
        if row[i] is not None:
            row[i] = row[i].astimezone(UTC)
    return Job.from_row(_Row(dict(zip(JOB_COLUMNS, row, strict=True))))


class FourEyes(OpsError):
    code = "FOUR_EYES"
    http_status = 403


class LeaseLost(Conflict):
    code = "LEASE_LOST"


@dataclass(frozen=True)
class Filters:
    state: str | None = None
    type: str | None = None
    priority: str | None = None
    created_by: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


class JobQueue:
    """One queue over an engine; `clock` and `rng` are injectable so tests control time and jitter."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        backoff_base: float = 2.0,
        backoff_cap: float = 300.0,
        rng: random.Random | None = None,
    ):
        self.engine = engine
        self.clock = clock
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.rng = rng or random.Random()
        self.postgres = engine.dialect.name == "postgresql"

    @contextmanager
    def _pg_cursor(self) -> Iterator[Any]:
        """A driver cursor in autocommit mode (see `_PG_ENQUEUE`), on a connection of the engine's pool."""
        with self.engine.connect() as conn:
            driver = conn.connection.dbapi_connection
            driver.autocommit = True
            try:
                with tracing.autocommit_span("postgresql"), driver.cursor() as cursor:
                    yield TimedCursor(cursor)
            finally:
                if not driver.closed:  # a lost connection is dropped by the pool (its next ping fails)
                    driver.autocommit = False

    # -- creating ------------------------------------------------------------------------------------

    def _values(self, new: NewJob, now: datetime) -> dict[str, Any]:
        if new.expires_at is not None and new.expires_at <= now:
            raise InvalidInput(f"expires_at: {new.expires_at.isoformat()} is not in the future")
        if new.created_by_kind not in CREATOR_KINDS:
            raise InvalidInput(
                f"created_by_kind: {new.created_by_kind!r} is not one of {', '.join(CREATOR_KINDS)}"
            )
        if new.max_attempts < 1:
            raise InvalidInput(f"max_attempts: {new.max_attempts} must be at least 1")
        state = State.AWAITING_APPROVAL if new.needs_approval else State.CREATED
        return dict(
            type=new.type,
            attributes=new.attributes,
            priority=priority_rank(new.priority),
            state=state.value,
            expires_at=new.expires_at,
            created_by=new.created_by,
            created_by_kind=new.created_by_kind,
            idempotency_key=new.idempotency_key,
            attempts=0,
            max_attempts=new.max_attempts,
            run_at=now,
            progress={},
            created_at=now,
            updated_at=now,
            depends_on=sorted(set(new.depends_on)) or None,
            waiting=0,
        )

    def enqueue(self, new: NewJob) -> tuple[Job, bool]:
        """Create a job; with an idempotency key that a live job holds, return that job instead (False)."""
        now = self.clock()
        values = self._values(new, now)
        if self.postgres and not new.depends_on:
            job, created = self._enqueue_pg(values, now)
        else:
            with self.engine.begin() as conn:
                job_id = self._insert_one(conn, values, now)
                if job_id is None:  # the key is held by a live job
                    live = select(jobs).where(jobs.c.idempotency_key == new.idempotency_key)
                    return Job.from_row(conn.execute(live).one()), False
            job, created = self.get(job_id), True
        if created:
            metrics.JOBS_CREATED.labels(new.type).inc()
        return job, created

    def _insert_one(self, conn: Connection, values: dict[str, Any], now: datetime) -> int | None:
        """Insert one job with its prerequisites and history; None when a live job holds its key."""
        prerequisites = values["depends_on"] or []
        if prerequisites:
            values["waiting"] = self._pending_prerequisites(conn, prerequisites)
        job_id = conn.execute(self._insert([values]).returning(jobs.c.id)).scalar()
        if job_id is None:
            return None
        reason = "created"
        if prerequisites:
            rows = [{"job_id": job_id, "prerequisite_id": p} for p in prerequisites]
            conn.execute(insert(job_dependencies), rows)
            reason += f", after job{'s' if len(rows) > 1 else ''} {', '.join(map(str, prerequisites))}"
        self._history(conn, [job_id], None, values["state"], values["created_by"], reason, now)
        return job_id

    @staticmethod
    def _pending_prerequisites(conn: Connection, ids: Sequence[int]) -> int:
        """How many of the jobs `ids` are live, locked (FOR KEY SHARE) so none finishes before this
        transaction commits; InvalidInput for an unknown id, Conflict for one that ended otherwise."""
        wanted = set(ids)

        def lock(candidates: set[int]) -> set[int]:
            query = select(jobs.c.id).where(jobs.c.id.in_(candidates))
            return set(conn.execute(query.with_for_update(read=True, key_share=True)).scalars())

        live = lock(wanted)
        ended = dict(
            conn.execute(
                select(jobs_archive.c.id, jobs_archive.c.state).where(jobs_archive.c.id.in_(wanted - live))
            ).all()
        )
        if missing := wanted - live - set(ended):  # or retried (archive -> queue) between the two reads
            live |= lock(missing)
        for job_id in sorted(wanted - live):
            state = ended.get(job_id)
            if state is None:
                raise InvalidInput(f"dependsOn: job {job_id} does not exist")
            if state != State.COMPLETED:
                raise Conflict(
                    f"dependsOn: job {job_id} ended {state}; a job waiting for it would never run",
                    code="PREREQUISITE_ENDED",
                )
        return len(live)

    def _enqueue_pg(self, values: dict[str, Any], now: datetime) -> tuple[Job, bool]:
        """One round trip: the job and its history inserted, the job returned with that history."""
        params = {
            **{c: _pg_array([values[c]]) for c in _PG_NEW},
            "now": now,
            "key": values["idempotency_key"],
        }
        with self._pg_cursor() as cursor:
            while True:
                cursor.execute(_PG_ENQUEUE_ONE, params)
                if (row := cursor.fetchone()) is not None:
                    job = _pg_job(row)
                    created = {
                        "at": now.astimezone(UTC),
                        "from_state": None,
                        "to_state": job.state.value,
                        "actor": job.created_by,
                        "reason": "created",
                    }
                    return Job(**{**job.__dict__, "history": [created]}), True
                cursor.execute(_PG_LIVE_KEY, params)  # the key is held by a live job
                if (row := cursor.fetchone()) is not None:
                    return _pg_job(row), False
                # that job finished in between: its key is free again

    def enqueue_many(self, batch: Sequence[NewJob]) -> list[int]:
        """Create many jobs in one transaction; jobs whose idempotency key is live are skipped."""
        ids = self._enqueue_many(batch)
        if ids:
            types = [new.type for new in batch] if len(ids) == len(batch) else self._types(ids)
            for job_type in set(types):
                metrics.JOBS_CREATED.labels(job_type).inc(types.count(job_type))
        return ids

    def _types(self, job_ids: Sequence[int]) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(jobs.c.type).where(jobs.c.id.in_(job_ids))).scalars())

    def _enqueue_many(self, batch: Sequence[NewJob]) -> list[int]:
        now = self.clock()
        rows = [self._values(new, now) for new in batch]
        if not rows:
            return []
        if any(new.depends_on for new in batch):
            with self.engine.begin() as conn:
                return [i for values in rows if (i := self._insert_one(conn, values, now)) is not None]
        if self.postgres:  # the rows as array literals; the jobs and their history in one statement
            arrays = {c: _pg_array(r[c] for r in rows) for c in _PG_NEW}
            with self._pg_cursor() as cursor:
                cursor.execute(_PG_ENQUEUE, {**arrays, "now": now})
                ids = [i for (i,) in cursor.fetchall()]
                if len(rows) >= ANALYZE_AFTER:
                    cursor.execute("ANALYZE jobs")
            return ids
        with self.engine.begin() as conn:
            ids = list(conn.execute(self._insert(rows).returning(jobs.c.id)).scalars())
            for state in {r["state"] for r in rows}:
                mine = conn.execute(
                    select(jobs.c.id, jobs.c.created_by).where(jobs.c.id.in_(ids), jobs.c.state == state)
                ).all()
                self._history(conn, [i for i, _ in mine], None, state, [c for _, c in mine], "created", now)
        return ids

    def _insert(self, rows: list[dict[str, Any]]):
        dialect_insert = pg_insert if self.postgres else sqlite_insert
        return (
            dialect_insert(jobs)
            .values(rows)
            .on_conflict_do_nothing(
                index_elements=["idempotency_key"], index_where=jobs.c.idempotency_key.is_not(None)
            )
        )

    # -- reading -------------------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        """A job (live or archived) with its history."""
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
            archived = row is None
            if archived:
                row = conn.execute(select(jobs_archive).where(jobs_archive.c.id == job_id)).first()
            if row is None:
                raise NotFound(f"job {job_id}: does not exist")
            history = (
                conn.execute(
                    select(
                        job_history.c.at,
                        job_history.c.from_state,
                        job_history.c.to_state,
                        job_history.c.actor,
                        job_history.c.reason,
                    )
                    .where(job_history.c.job_id == job_id)
                    .order_by(job_history.c.id)
                )
                .mappings()
                .all()
            )
        job = Job.from_row(row, archived=archived)
        return Job(**{**job.__dict__, "history": [dict(h) for h in history]})

    def list(self, filters: Filters, after_id: int | None = None, limit: int = 50) -> list[Job]:
        """Jobs matching `filters`, newest first, strictly older than `after_id` (the cursor)."""
        if filters.state is not None and filters.state not in {s.value for s in State}:
            raise InvalidInput(f"state: {filters.state!r} is not one of {', '.join(s.value for s in State)}")
        selects = []
        for table, finished in ((jobs, False), (jobs_archive, True)):
            if filters.state and (State(filters.state) in FINISHED) != finished:
                continue
            c = table.c
            cond = [c.id < after_id] if after_id else []
            for value, column in (
                (filters.state, c.state),
                (filters.type, c.type),
                (filters.created_by, c.created_by),
            ):
                if value is not None:
                    cond.append(column == value)
            if filters.priority is not None:
                cond.append(c.priority == priority_rank(filters.priority))
            if filters.created_from is not None:
                cond.append(c.created_at >= filters.created_from)
            if filters.created_to is not None:
                cond.append(c.created_at < filters.created_to)
            cols = [getattr(c, n) for n in JOB_COLUMNS]
            selects.append(select(*cols, literal(finished).label("archived")).where(and_(True, *cond)))
        query = union_all(*selects).subquery() if len(selects) > 1 else selects[0].subquery()
        with self.engine.connect() as conn:
            rows = conn.execute(select(query).order_by(query.c.id.desc()).limit(limit)).all()
        out = []
        for row in rows:
            m = dict(row._mapping)
            archived = bool(m.pop("archived"))
            out.append(Job.from_row(_Row(m), archived=archived))
        return out

    def counts(self) -> dict[str, int]:
        """Live jobs per state (the archive is not counted)."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state)).all())

    def claimable(self, types: Iterable[str] | None = None) -> int:
        """How many jobs a worker could claim now."""
        now = self.clock()
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(jobs).where(self._claimable(now, types))
            ).scalar_one()

    def peek(self, limit: int, types: Iterable[str] | None = None) -> list[tuple[int, datetime]]:
        """(id, updated_at) of the next `limit` jobs a claim would take, in claim order; nothing is locked.

        `updated_at` changes with every transition, so the pair names one claimable turn of a job."""
        now = self.clock()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(jobs.c.id, jobs.c.updated_at)
                .where(self._claimable(now, types))
                .order_by(jobs.c.priority, jobs.c.id)
                .limit(limit)
            ).all()
        return [(r.id, r.updated_at) for r in rows]

    # -- working -------------------------------------------------------------------------------------

    @staticmethod
    def _claimable(now: datetime, types: Iterable[str] | None):
        cond = [  # literals, as in the claim index's condition, so that SQLite uses that index
            jobs.c.state == literal_column(f"'{State.CREATED}'"),
            jobs.c.waiting == literal_column("0"),
            jobs.c.run_at <= now,
            or_(jobs.c.expires_at.is_(None), jobs.c.expires_at > now),
        ]
        if types is not None:
            cond.append(jobs.c.type.in_(list(types)))
        return and_(*cond)

    def claim(
        self, worker: str, limit: int = 1, types: Iterable[str] | None = None, lease_seconds: float = 60.0
    ) -> list[Job]:
        """Move up to `limit` claimable jobs to In Progress, leased to `worker`: High first, then oldest."""
        now = self.clock()
        lease = now + timedelta(seconds=lease_seconds)
        if self.postgres:
            params = {"now": now, "lease": lease, "worker": worker, "limit": limit}
            sql = _PG_CLAIM
            if types is not None:
                sql, params["types"] = _PG_CLAIM_TYPES, list(types)
            with self._pg_cursor() as cursor:
                cursor.execute(sql, params)
                claimed = [_pg_job(values) for values in cursor.fetchall()]
        else:
            claimed = [Job.from_row(r) for r in self._claim_sqlite(worker, limit, types, now, lease)]
        for job in claimed:
            metrics.JOBS_CLAIMED.labels(job.type).inc()
        return sorted(claimed, key=lambda j: (PRIORITIES[j.priority], j.id))

    def _claim_sqlite(self, worker: str, limit: int, types, now: datetime, lease: datetime) -> list:
        pick = (
            select(jobs.c.id)
            .where(self._claimable(now, types))
            .order_by(jobs.c.priority, jobs.c.id)
            .limit(limit)
        )
        claim = (
            update(jobs)
            .where(jobs.c.id.in_(pick.scalar_subquery()))
            .values(
                state=State.IN_PROGRESS.value,
                lease_owner=worker,
                lease_expires_at=lease,
                attempts=jobs.c.attempts + 1,
                updated_at=now,
                started_at=func.coalesce(jobs.c.started_at, now),
            )
            .returning(*jobs.c)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(claim).all()
            if rows:
                self._history(
                    conn, [r.id for r in rows], State.CREATED, State.IN_PROGRESS, worker, "claimed", now
                )
        return rows

    def take(self, job_id: int, worker: str, lease_seconds: float = 3600.0) -> Job:
        """Claim one given Created, unexpired job (a person taking a manual job)."""
        now = self.clock()
        job = self.get(job_id)
        if job.expires_at is not None and job.expires_at <= now:
            raise Conflict(
                f"job {job_id}: expired at {job.expires_at.isoformat()}", code="ILLEGAL_TRANSITION"
            )
        if job.waiting:  # it only ever goes down while the job is live: no lock needed to trust a 0
            raise Conflict(f"job {job_id}: waits for {job.waiting} prerequisite job(s)", code="WAITING")
        return self._transition(
            job_id,
            "claim",
            worker,
            "taken by a person",
            lease_owner=worker,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=jobs.c.attempts + 1,
            started_at=func.coalesce(jobs.c.started_at, now),
        )

    def pending(self, types: Iterable[str]) -> int:
        """Live jobs of `types` still to run: Created (also those waiting out a backoff) or In Progress.

        Jobs waiting for prerequisites are not counted: the prerequisites are, while they still run."""
        running = or_(
            and_(jobs.c.state == State.CREATED.value, jobs.c.waiting == 0),
            jobs.c.state == State.IN_PROGRESS.value,
        )
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(jobs).where(jobs.c.type.in_(list(types)), running)
            ).scalar_one()

    def heartbeat(self, job_ids: Sequence[int], worker: str, lease_seconds: float = 60.0) -> int:
        """Extend the leases `worker` still holds; returns how many it holds."""
        now = self.clock()
        with self.engine.begin() as conn:
            return conn.execute(
                update(jobs)
                .where(
                    jobs.c.id.in_(job_ids),
                    jobs.c.lease_owner == worker,
                    jobs.c.state == State.IN_PROGRESS.value,
                )
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
            ).rowcount

    def save_progress(self, job_id: int, worker: str, progress: dict[str, Any]) -> None:
        """Record the actions done so far; refused once the lease is lost, so a rescued job is not touched."""
        with self.engine.begin() as conn:
            updated = conn.execute(
                update(jobs)
                .where(
                    jobs.c.id == job_id, jobs.c.lease_owner == worker, jobs.c.state == State.IN_PROGRESS.value
                )
                .values(progress=progress, updated_at=self.clock())
            ).rowcount
        if updated != 1:
            raise LeaseLost(f"job {job_id}: worker {worker!r} no longer holds it")

    def complete(self, job_ids: Sequence[int], worker: str) -> list[int]:
        """Finish jobs `worker` holds as Completed (archived); returns those it still held."""
        now = self.clock()
        if self.postgres:
            params = {
                "ids": list(job_ids),
                "state": State.COMPLETED.value,
                "now": now,
                "actor": worker,
                "reason": None,
            }
            with self._pg_cursor() as cursor:
                cursor.execute(_PG_COMPLETE, params)
                return [i for (i,) in cursor.fetchall()]
        with self.engine.begin() as conn:
            return self._archive(
                conn,
                job_ids,
                State.COMPLETED,
                worker,
                None,
                now,
                [jobs.c.state == State.IN_PROGRESS.value, jobs.c.lease_owner == worker],
            )

    def fail(self, job_id: int, worker: str, error: str, retryable: bool = True) -> Job:
        """A failed attempt: back to Created after a backoff while attempts remain, else Failed (archived)."""
        now = self.clock()
        with self.engine.begin() as conn:
            held = [
                jobs.c.id == job_id,
                jobs.c.state == State.IN_PROGRESS.value,
                jobs.c.lease_owner == worker,
            ]
            row = conn.execute(select(jobs.c.attempts, jobs.c.max_attempts).where(*held)).first()
            if row is None:
                raise LeaseLost(f"job {job_id}: worker {worker!r} no longer holds it")
            if retryable and row.attempts < row.max_attempts:
                self._requeue(
                    conn,
                    [job_id],
                    {job_id: row.attempts},
                    worker,
                    f"attempt {row.attempts} failed: {error}",
                    error,
                    now,
                )
            else:
                reason = f"attempt {row.attempts} of {row.max_attempts} failed: {error}"
                self._archive(conn, [job_id], State.FAILED, worker, reason, now, held, last_error=error)
        job = self.get(job_id)
        (metrics.JOBS_FAILED if job.state == State.FAILED else metrics.JOBS_RETRIED).labels(job.type).inc()
        return job

    def backoff(self, attempts: int) -> timedelta:
        """Exponential backoff with jitter: base x 2^(attempts-1), capped, times 0.5..1.5."""
        delay = min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempts - 1))
        return timedelta(seconds=delay * self.rng.uniform(0.5, 1.5))

    def _requeue(
        self,
        conn: Connection,
        job_ids,
        attempts: dict[int, int],
        actor: str,
        reason: str,
        error: str,
        now: datetime,
    ) -> None:
        for job_id in job_ids:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    state=State.CREATED.value,
                    lease_owner=None,
                    lease_expires_at=None,
                    last_error=error,
                    run_at=now + self.backoff(attempts[job_id]),
                    updated_at=now,
                )
            )
        self._history(conn, list(job_ids), State.IN_PROGRESS, State.CREATED, actor, reason, now)

    # -- people --------------------------------------------------------------------------------------

    def _transition(self, job_id: int, operation: str, actor: str, reason: str | None, **values) -> Job:
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id).with_for_update()).first()
            if row is None:  # finished: every operation but `retry` is refused
                check_transition(job_id, self._archived_state(conn, job_id), operation)
            target = check_transition(job_id, State(row.state), operation)
            if operation == "approve" and actor == row.created_by:
                raise FourEyes(f"job {job_id}: approver {actor!r} created it; another person must approve")
            if target in FINISHED:
                self._archive(
                    conn, [job_id], target, actor, reason, now, [], last_error=values.get("last_error")
                )
            else:
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id)
                    .values(state=target.value, updated_at=now, **values)
                )
                self._history(conn, [job_id], State(row.state), target, actor, reason, now)
        return self.get(job_id)

    def approve(self, job_id: int, actor: str) -> Job:
        """Four eyes: a person other than the creator releases the job to the queue."""
        return self._transition(job_id, "approve", actor, "approved", approved_by=actor)

    def reject(self, job_id: int, actor: str, reason: str) -> Job:
        if not (reason or "").strip():
            raise InvalidInput("reason: a rejection needs a reason")
        return self._transition(
            job_id, "reject", actor, f"rejected: {reason}", last_error=f"rejected: {reason}"
        )

    def cancel(self, job_id: int, actor: str, reason: str | None = None) -> Job:
        why = f"cancelled: {reason}" if reason else "cancelled"
        return self._transition(job_id, "cancel", actor, why, last_error=why)

    def retry(self, job_id: int, actor: str) -> Job:
        """Bring a Failed job back to the queue with a fresh set of attempts."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(jobs_archive).where(jobs_archive.c.id == job_id).with_for_update()
            ).first()
            if row is None:  # live (or unknown): refused with its state
                live = conn.execute(select(jobs.c.state).where(jobs.c.id == job_id)).scalar()
                if live is None:
                    raise NotFound(f"job {job_id}: does not exist")
                check_transition(job_id, State(live), "retry")
            check_transition(job_id, State(row.state), "retry")
            values = {n: getattr(row, n) for n in JOB_COLUMNS}
            prerequisites = values["depends_on"] or []
            values.update(
                waiting=self._pending_prerequisites(conn, prerequisites) if prerequisites else 0,
                state=State.CREATED.value,
                attempts=0,
                run_at=now,
                updated_at=now,
                finished_at=None,
                lease_owner=None,
                lease_expires_at=None,
            )
            if values["idempotency_key"] is not None:
                taken = conn.execute(
                    select(jobs.c.id).where(jobs.c.idempotency_key == values["idempotency_key"])
                )
                if (other := taken.scalar()) is not None:
                    raise Conflict(f"job {job_id}: idempotency key is held by live job {other}")
            conn.execute(delete(jobs_archive).where(jobs_archive.c.id == job_id))
            conn.execute(insert(jobs).values(values))
            self._history(conn, [job_id], State.FAILED, State.CREATED, actor, "retry requested", now)
        return self.get(job_id)

    @staticmethod
    def _archived_state(conn: Connection, job_id: int) -> State:
        state = conn.execute(select(jobs_archive.c.state).where(jobs_archive.c.id == job_id)).scalar()
        if state is None:
            raise NotFound(f"job {job_id}: does not exist")
        return State(state)

    # -- housekeeping --------------------------------------------------------------------------------

    def vacuum(self) -> int:
        """PostgreSQL: VACUUM (ANALYZE) `jobs` once it holds VACUUM_AFTER dead row versions, unless another
        vacuum is running; returns how many there were (0 when nothing was done). SQLite needs none."""
        if not self.postgres:
            return 0
        with self._pg_cursor() as cursor:
            cursor.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'jobs'::regclass")
            (dead,) = cursor.fetchone()
            if dead < VACUUM_AFTER:
                return 0
            cursor.execute("VACUUM (ANALYZE, SKIP_LOCKED) jobs")
        return dead

    def rescue(self) -> tuple[list[int], list[int]]:
        """Jobs whose worker stopped heart-beating: back to the queue, or Failed after the last attempt."""
        now = self.clock()
        with self.engine.begin() as conn:
            lost = conn.execute(
                select(jobs.c.id, jobs.c.attempts, jobs.c.max_attempts, jobs.c.lease_owner)
                .where(jobs.c.state == State.IN_PROGRESS.value, jobs.c.lease_expires_at < now)
                .with_for_update(skip_locked=True)
            ).all()
            retry = [r for r in lost if r.attempts < r.max_attempts]
            failed = [r.id for r in lost if r.attempts >= r.max_attempts]
            for r in retry:
                error = f"worker {r.lease_owner!r} stopped (lease expired)"
                self._requeue(conn, [r.id], {r.id: r.attempts}, "rescuer", error, error, now)
            if failed:
                self._archive(
                    conn,
                    failed,
                    State.FAILED,
                    "rescuer",
                    "lease expired after the last attempt",
                    now,
                    [jobs.c.state == State.IN_PROGRESS.value],
                    last_error="worker stopped (lease expired)",
                )
        metrics.JOBS_RESCUED.inc(len(lost))
        return [r.id for r in retry], failed

    def sweep_expired(self) -> list[int]:
        """Created or Awaiting Approval jobs past `expires_at` become Expired (archived)."""
        now = self.clock()
        waiting = [State.CREATED.value, State.AWAITING_APPROVAL.value]
        with self.engine.begin() as conn:
            due = list(
                conn.execute(
                    select(jobs.c.id)
                    .where(jobs.c.state.in_(waiting), jobs.c.expires_at <= now)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            if due:
                self._archive(
                    conn,
                    due,
                    State.EXPIRED,
                    "sweeper",
                    "expired before it ran",
                    now,
                    [jobs.c.state.in_(waiting)],
                    last_error="expired",
                )
        metrics.JOBS_EXPIRED.inc(len(due))
        return due

    # -- shared steps --------------------------------------------------------------------------------

    def _archive(
        self,
        conn: Connection,
        job_ids: Sequence[int],
        state: State,
        actor: str,
        reason: str | None,
        now: datetime,
        guard: list,
        last_error: str | None = None,
    ) -> list[int]:
        """Move the jobs still matching `guard` to the archive as `state`, with history; then settle their
        dependents (see the module docstring). Returns the ids archived."""
        ids = self._move_to_archive(conn, job_ids, state, actor, reason, now, guard, last_error)
        if ids and state == State.COMPLETED:
            self._release(conn, ids, now)
        elif ids:
            self._fail_dependents(conn, ids, state, actor, reason, now)
        return ids

    def _move_to_archive(
        self,
        conn: Connection,
        job_ids: Sequence[int],
        state: State,
        actor: str,
        reason: str | None,
        now: datetime,
        guard: list,
        last_error: str | None,
    ) -> list[int]:
        if not job_ids:
            return []
        if self.postgres:
            where = " AND ".join(str(g.compile(conn, compile_kwargs={"literal_binds": True})) for g in guard)
            params = {
                "ids": list(job_ids),
                "state": state.value,
                "now": now,
                "actor": actor,
                "reason": reason,
                "error": last_error,
            }
            sql = _pg_archive(where.replace("%", "%%"), last_error is not None)
            return list(conn.exec_driver_sql(sql, params).scalars())
        rows = conn.execute(select(jobs).where(jobs.c.id.in_(job_ids), *guard)).all()
        if not rows:
            return []
        archived = []
        for row in rows:
            values = {n: getattr(row, n) for n in JOB_COLUMNS}
            values.update(
                state=state.value,
                finished_at=now,
                updated_at=now,
                lease_owner=None,
                lease_expires_at=None,
                archived_at=now,
            )
            if last_error is not None:
                values["last_error"] = last_error
            archived.append(values)
        ids = [r.id for r in rows]
        conn.execute(insert(jobs_archive), archived)
        conn.execute(delete(jobs).where(jobs.c.id.in_(ids)))
        for from_state in {r.state for r in rows}:
            self._history(
                conn,
                [r.id for r in rows if r.state == from_state],
                State(from_state),
                state,
                actor,
                reason,
                now,
            )
        return ids

    @staticmethod
    def _release(conn: Connection, prerequisites: Sequence[int], now: datetime) -> None:
        """The dependents of the jobs just Completed wait for that many fewer prerequisites."""
        d = job_dependencies.c
        done = select(func.count()).where(d.job_id == jobs.c.id, d.prerequisite_id.in_(prerequisites))
        conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(select(d.job_id).where(d.prerequisite_id.in_(prerequisites))))
            .values(waiting=jobs.c.waiting - done.scalar_subquery(), updated_at=now)
        )

    def _fail_dependents(
        self,
        conn: Connection,
        ended: Sequence[int],
        state: State,
        actor: str,
        reason: str | None,
        now: datetime,
    ) -> None:
        """Fail the not-started dependents of the jobs that just `ended` in `state`, with their reason; their
        own dependents follow through `_archive`. (Run as its own statement, after the archive's, so that it
        sees a dependent whose creation committed while the archive waited for its lock.)"""
        d = job_dependencies.c
        rows = conn.execute(
            select(d.prerequisite_id, d.job_id)
            .join_from(job_dependencies, jobs, jobs.c.id == d.job_id)
            .where(d.prerequisite_id.in_(ended), jobs.c.state.in_(NOT_STARTED))
            .order_by(d.prerequisite_id, d.job_id)
        ).all()
        for prerequisite in dict.fromkeys(p for p, _ in rows):
            why = prerequisite_ended(prerequisite, state, reason)
            dependents = [j for p, j in rows if p == prerequisite]
            guard = [jobs.c.state.in_(NOT_STARTED)]
            self._archive(conn, dependents, State.FAILED, actor, why, now, guard, last_error=why)

    def settle_dependencies(self) -> tuple[list[int], list[int]]:
        """The safety net behind the settling done when jobs finish: jobs waiting for prerequisites whose
        count is too high get it lowered, those with a prerequisite that ended without completing fail.
        Returns (ids released to the queue, ids failed)."""
        now = self.clock()
        d, a = job_dependencies.c, jobs_archive.c
        released, failed = [], []
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(jobs.c.id, jobs.c.waiting, d.prerequisite_id, a.state, a.last_error)
                .select_from(jobs.join(job_dependencies, d.job_id == jobs.c.id))
                .outerjoin(jobs_archive, a.id == d.prerequisite_id)
                .where(jobs.c.waiting > literal_column("0"))
                .order_by(jobs.c.id, d.prerequisite_id)
            ).all()
            for job_id in dict.fromkeys(r.id for r in rows):
                mine = [r for r in rows if r.id == job_id]
                ended = [r for r in mine if r.state not in (None, State.COMPLETED.value)]
                if ended:
                    r = ended[0]
                    why = prerequisite_ended(r.prerequisite_id, State(r.state), r.last_error)
                    guard = [jobs.c.state.in_(NOT_STARTED)]
                    failed += self._archive(conn, [job_id], State.FAILED, "sweeper", why, now, guard, why)
                    continue
                pending = sum(r.state is None for r in mine)
                if pending < mine[0].waiting:  # only ever lowered: a concurrent release cannot be undone
                    lowered = conn.execute(
                        update(jobs)
                        .where(jobs.c.id == job_id, jobs.c.waiting > pending)
                        .values(waiting=pending, updated_at=now)
                    ).rowcount
                    if lowered and pending == 0:
                        released.append(job_id)
        return released, failed

    @staticmethod
    def _history(
        conn: Connection,
        job_ids: Sequence[int],
        from_state,
        to_state,
        actor,
        reason: str | None,
        now: datetime,
    ) -> None:
        if not job_ids:
            return
        actors = actor if isinstance(actor, list) else [actor] * len(job_ids)
        conn.execute(
            insert(job_history),
            [
                {
                    "job_id": i,
                    "at": now,
                    "from_state": from_state,
                    "to_state": str(to_state),
                    "actor": a,
                    "reason": reason,
                }
                for i, a in zip(job_ids, actors, strict=True)
            ],
        )


def prerequisite_ended(job_id: int, state: State, reason: str | None) -> str:
    """Why a dependent failed: its prerequisite's end, with that job's own reason."""
    return (f"prerequisite job {job_id} ended {state}" + (f": {reason}" if reason else ""))[:2000]


class _Row:
    """Adapter giving a plain mapping the `_mapping` attribute `Job.from_row` reads."""

    def __init__(self, mapping: dict[str, Any]):
        self._mapping = mapping
