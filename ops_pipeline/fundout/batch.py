"""Fund-out batches: one per hourly slot. Plan the due payouts (held in the ledger), drive them, report.

Exactly once per (business, currency, slot): the payout row is the claim (a unique index), planning
runs under the `ledger` lock with the balance rows locked, and one runner at a time drives payouts
(the `fundout` lock), so a slot run again, a retried trigger or two schedulers at once never pay twice.
A slot missed while nothing ran is run once when batches resume, if it is at most 24 hours old; older
missed slots are recorded as `missed` and reported to ops, never paid.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ops_pipeline.db.bulk import insert_rows
from ops_pipeline.db.schema import fundout_batches, fundout_payouts
from ops_pipeline.errors import InvalidInput, NotFound
from ops_pipeline.fundout import payouts
from ops_pipeline.fundout.bank import Bank
from ops_pipeline.fundout.calendar import HOUR, is_due, slot_of
from ops_pipeline.fundout.config import enabled_configs
from ops_pipeline.ledger import balances, holds
from ops_pipeline.money import exponent
from ops_pipeline.notify import Notification, enqueue
from ops_pipeline.observability import logs, tracing
from ops_pipeline.observability.metrics import FUNDOUT_BATCH_SECONDS, FUNDOUT_MISSED_SLOTS
from ops_pipeline.workspace import Workspace

QUEUED, RUNNING, DONE, PENDING, MISSED = "queued", "running", "done", "pending", "missed"
STATUSES = (QUEUED, RUNNING, DONE, PENDING, MISSED)
MAX_PAGE = 500
MAX_ID = 2**63 - 1  # ids are 64-bit in the database
CATCH_UP = timedelta(hours=24)
STALE = timedelta(minutes=5)  # open payouts untouched this long are resumed by the next run


@dataclass(frozen=True)
class BatchSummary:
    """Counts of a batch's payouts and their amounts by currency (major units, exact)."""

    due: int = 0
    skipped: int = 0
    paid: int = 0
    failed: int = 0
    pending: int = 0
    paid_amounts: dict[str, Decimal] = field(default_factory=dict)
    failed_amounts: dict[str, Decimal] = field(default_factory=dict)
    alerted: bool = False  # ops were told of a failure rate above the threshold
    missed: bool = False  # too old when batches resumed: reported, never paid

    def stored(self) -> dict:
        """The JSON kept in the batch row."""
        amounts = {"paid": self.paid_amounts, "failed": self.failed_amounts}
        return {
            **{
                k: getattr(self, k)
                for k in ("due", "skipped", "paid", "failed", "pending", "alerted", "missed")
            },
            "amounts": {kind: {cur: str(v) for cur, v in found.items()} for kind, found in amounts.items()},
        }

    @classmethod
    def from_stored(cls, data: dict) -> BatchSummary:
        amounts = data.get("amounts", {})
        return cls(
            **{k: data.get(k, 0) for k in ("due", "skipped", "paid", "failed", "pending")},
            paid_amounts={c: Decimal(v) for c, v in amounts.get("paid", {}).items()},
            failed_amounts={c: Decimal(v) for c, v in amounts.get("failed", {}).items()},
            alerted=bool(data.get("alerted")),
            missed=bool(data.get("missed")),
        )


@dataclass(frozen=True)
class BatchReport:
    """A batch: the hourly slot it runs, where it stands, and its summary."""

    id: int
    slot: datetime
    status: str
    triggered_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    summary: BatchSummary

    @classmethod
    def from_row(cls, row) -> BatchReport:
        m = row._mapping
        return cls(
            id=m["id"],
            slot=m["slot"],
            status=m["status"],
            triggered_by=m["triggered_by"],
            created_at=m["created_at"],
            started_at=m["started_at"],
            finished_at=m["finished_at"],
            summary=BatchSummary.from_stored(m["summary"] or {}),
        )


@dataclass(frozen=True)
class BatchPage:
    batches: list[BatchReport]
    next_cursor: int | None  # the id to pass as `after` for the next page; None on the last one


def _utc(at: datetime) -> datetime:
    """A time without an offset is taken as UTC, the slots' zone."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _batch_id(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise InvalidInput(f"{name}: {value!r} is not a batch id (1 to 2^63-1)")
    return value


def get_batch(ws: Workspace, batch_id: int) -> BatchReport:
    _batch_id("batchId", batch_id)
    with ws.read_engine.connect() as conn:
        row = conn.execute(select(fundout_batches).where(fundout_batches.c.id == batch_id)).first()
    if row is None:
        raise NotFound(f"batchId: {batch_id!r} does not exist")
    return BatchReport.from_row(row)


def list_batches(
    ws: Workspace,
    *,
    slot_from: datetime | None = None,
    slot_to: datetime | None = None,
    status: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> BatchPage:
    """Batches newest slot first, `slot_from <= slot <= slot_to`, optionally of one status; a page continues
    after the batch id `after` (the previous page's cursor)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status: {status!r} is not allowed; use one of {', '.join(STATUSES)}")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit: {limit!r} is not allowed; use 1-{MAX_PAGE}")
    b = fundout_batches.c
    query = select(fundout_batches).order_by(b.slot.desc()).limit(limit + 1)
    if slot_from is not None:
        query = query.where(b.slot >= _utc(slot_from))
    if slot_to is not None:
        query = query.where(b.slot <= _utc(slot_to))
    if status is not None:
        query = query.where(b.status == status)
    with ws.read_engine.connect() as conn:
        if after is not None:
            last = conn.execute(select(b.slot).where(b.id == _batch_id("cursor", after))).scalar_one_or_none()
            if last is None:
                raise InvalidInput(f"cursor: {after!r} is not a cursor from a previous page")
            query = query.where(b.slot < last)
        rows = conn.execute(query).all()
    found = [BatchReport.from_row(r) for r in rows[:limit]]
    return BatchPage(found, found[-1].id if len(rows) > limit else None)


def _ensure(ws: Workspace, slot: datetime, status: str, actor: str):
    """The slot's batch row, made with `status` if it does not exist yet."""
    b = fundout_batches.c
    for _ in range(2):  # a concurrent insert of the same slot: read it back
        with ws.engine.begin() as conn:
            row = conn.execute(select(fundout_batches).where(b.slot == slot)).first()
            if row is not None:
                return row
            try:
                conn.execute(
                    insert(fundout_batches).values(
                        slot=slot,
                        status=status,
                        triggered_by=actor,
                        created_at=datetime.now(UTC),
                        summary=BatchSummary().stored(),
                    )
                )
            except IntegrityError:
                continue
            return conn.execute(select(fundout_batches).where(b.slot == slot)).one()
    raise RuntimeError(f"fundout batch of slot {slot.isoformat()} could not be made")


def trigger(ws: Workspace, actor: str, now: datetime | None = None) -> BatchReport:
    """The batch of the current slot (queued if new); the caller runs `run_due` after answering."""
    return BatchReport.from_row(_ensure(ws, slot_of(now or datetime.now(UTC)), QUEUED, actor))


def run_due(
    ws: Workspace, actor: str, now: datetime | None = None, bank: Bank | None = None
) -> list[BatchReport]:
    """What the hourly schedule and the trigger run: missed slots (24 h), the current slot, stragglers."""
    now = now or datetime.now(UTC)
    current = slot_of(now)
    with ws.lock("fundout"):
        late, missed = _missed_slots(ws, current)
        if missed:
            _report_missed(ws, missed, actor)
        with _bank(ws, bank) as use:
            done = [_run(ws, use, slot, actor) for slot in [*late, current]]
            _resume_stale(ws, use, actor)
    return done


def run_slot(ws: Workspace, at: datetime, actor: str, bank: Bank | None = None) -> BatchReport:
    """Run the slot containing `at` alone (the CLI's `fundout run --at`); no catch-up."""
    with ws.lock("fundout"), _bank(ws, bank) as use:
        return _run(ws, use, slot_of(at), actor)


class _bank:
    """The given bank client, or one made (and closed) for this run."""

    def __init__(self, ws: Workspace, bank: Bank | None):
        self.ws, self.given, self.made = ws, bank, None

    def __enter__(self) -> Bank:
        if self.given is not None:
            return self.given
        self.made = Bank(self.ws.settings)
        return self.made

    def __exit__(self, *exc) -> None:
        if self.made is not None:
            self.made.close()


def _missed_slots(ws: Workspace, current: datetime) -> tuple[list[datetime], list[datetime]]:
    """Slots before `current` to run now: those after the last batch, and those whose batch never finished
    (its process stopped) within 24 h. Second: slots after the last batch too old to pay."""
    b = fundout_batches.c
    with ws.engine.connect() as conn:
        last = conn.execute(select(func.max(b.slot)).where(b.slot < current)).scalar_one()
        unfinished = (
            conn.execute(
                select(b.slot).where(
                    b.status.in_((QUEUED, RUNNING)), b.slot < current, b.slot >= current - CATCH_UP
                )
            )
            .scalars()
            .all()
        )
    if last is None:
        return [], []  # the first batch ever: nothing was missed
    gap = [last + HOUR * k for k in range(1, int((current - last) / HOUR))]
    late = sorted({*unfinished, *(s for s in gap if current - s <= CATCH_UP)})
    return late, [s for s in gap if current - s > CATCH_UP]


def _report_missed(ws: Workspace, missed: list[datetime], actor: str) -> None:
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        rows = [
            dict(
                slot=s,
                status=MISSED,
                triggered_by=actor,
                created_at=now,
                finished_at=now,
                summary=BatchSummary(missed=True).stored(),
            )
            for s in missed
        ]
        insert_rows(conn, fundout_batches, rows)
        first, last = missed[0].isoformat(), missed[-1].isoformat()
        enqueue(
            conn,
            [
                Notification(
                    event="ops.alert",
                    subject=f"Fund-out: {len(missed)} hourly slots missed, not paid",
                    payload={
                        "alert": "fundout.missed_slots",
                        "slots": len(missed),
                        "from": first,
                        "to": last,
                        "why": "no batch ran for them and they are more than 24 hours old",
                    },
                    email=ws.settings.alert_email,
                    entity_type="fundout_batch",
                    entity_id=f"{first}/{last}",
                )
            ],
        )
    FUNDOUT_MISSED_SLOTS.inc(len(missed))


def _run(ws: Workspace, bank: Bank, slot: datetime, actor: str) -> BatchReport:
    started = time.perf_counter()
    batch = _ensure(ws, slot, QUEUED, actor)
    with (
        logs.bind(batch_id=batch.id, slot=slot.isoformat()),
        tracing.span("fundout.batch", {"ops.batch.id": batch.id, "ops.batch.slot": slot.isoformat()}),
    ):
        report = _drive(ws, bank, batch, slot, actor)
    FUNDOUT_BATCH_SECONDS.observe(time.perf_counter() - started)
    return report


def _drive(ws: Workspace, bank: Bank, batch, slot: datetime, actor: str) -> BatchReport:
    with ws.engine.begin() as conn:
        conn.execute(
            update(fundout_batches)
            .where(fundout_batches.c.id == batch.id)
            .values(status=RUNNING, started_at=datetime.now(UTC), finished_at=None)
        )
    due, skipped = _plan(ws, slot, batch.id, actor)
    with ws.engine.connect() as conn:
        todo = payouts.load(
            conn, (fundout_payouts.c.slot == slot) & fundout_payouts.c.status.in_(payouts.OPEN)
        )
    payouts.drive(ws, bank, todo, actor)
    return _finish(ws, batch, due, skipped, actor)


def _plan(ws: Workspace, slot: datetime, batch_id: int, actor: str) -> tuple[int, int]:
    """Hold `available - minimumBalance` of each currency of each due business not yet planned; the number
    of due businesses and of balances skipped at their minimum."""
    with ws.engine.connect() as conn:
        due = [c for c in enabled_configs(conn) if is_due(c.freq_type, c.day, c.hour, c.timezone, slot)]
    if not due:
        return 0, 0
    with ws.lock("ledger"):
        balances.refresh_cache(ws)  # exact: no ledger writer can commit until the holds are in
        now = datetime.now(UTC)
        with ws.engine.begin() as conn:
            available = balances.available_all(conn, now, [c.business_id for c in due], lock=True)
            p = fundout_payouts.c
            same_slot = select(p.business_id, p.currency).where(p.slot == slot)
            planned = {tuple(r) for r in conn.execute(same_slot)}
            by_business: dict[str, dict[str, int]] = defaultdict(dict)
            for (business, currency), amount in available.items():
                by_business[business][currency] = amount
            new, skipped = [], 0
            for config in due:
                for currency, amount in sorted(by_business.get(config.business_id, {}).items()):
                    if (config.business_id, currency) in planned:
                        continue
                    payout = amount - config.minimum_minor(exponent(currency))
                    if payout <= 0:
                        skipped += 1
                        continue
                    new.append(
                        dict(
                            id=str(uuid.uuid4()),
                            kind="scheduled",
                            business_id=config.business_id,
                            currency=currency,
                            amount_minor=payout,
                            slot=slot,
                            batch_id=batch_id,
                        )
                    )
            payouts.insert_held(conn, new, actor=actor, now=now)
            holds.reserve_many(
                conn,
                [
                    dict(
                        hold_id=r["id"],
                        merchant_id=r["business_id"],
                        currency=r["currency"],
                        amount_minor=r["amount_minor"],
                        reference=r["id"],
                    )
                    for r in new
                ],
                actor=actor,
                reason="fund-out",
                now=now,
            )
    return len(due), skipped


def _finish(ws: Workspace, batch, due: int, skipped: int, actor: str) -> BatchReport:
    """Counts and amounts of the slot's payouts in the batch row; ops alerted on a high failure rate."""
    with ws.engine.begin() as conn:
        n, amounts = payouts.counts(conn, fundout_payouts.c.slot == batch.slot)
        paid, failed = n.get(payouts.POSTED, 0), n.get(payouts.FAILED, 0)
        pending = sum(n.get(s, 0) for s in payouts.OPEN)
        rate = failed / (paid + failed) if paid + failed else 0
        was_alerted = bool(batch.summary.get("alerted"))
        alert = failed and rate > ws.settings.fundout_alert_failure_rate and not was_alerted
        summary = BatchSummary(
            due=due,
            skipped=skipped,
            paid=paid,
            failed=failed,
            pending=pending,
            paid_amounts=amounts.get(payouts.POSTED, {}),
            failed_amounts=amounts.get(payouts.FAILED, {}),
            alerted=was_alerted or bool(alert),
        )
        if alert:
            enqueue(
                conn,
                [
                    Notification(
                        event="ops.alert",
                        subject=f"Fund-out: {failed} of {paid + failed} payouts failed",
                        payload={
                            "alert": "fundout.failure_rate",
                            "batchId": batch.id,
                            "slot": batch.slot.isoformat(),
                            "failed": failed,
                            "paid": paid,
                            "rate": f"{rate:.4f}",
                            "threshold": str(ws.settings.fundout_alert_failure_rate),
                        },
                        email=ws.settings.alert_email,
                        entity_type="fundout_batch",
                        entity_id=str(batch.id),
                    )
                ],
            )
        conn.execute(
            update(fundout_batches)
            .where(fundout_batches.c.id == batch.id)
            .values(
                status=PENDING if pending else DONE, finished_at=datetime.now(UTC), summary=summary.stored()
            )
        )
        return BatchReport.from_row(
            conn.execute(select(fundout_batches).where(fundout_batches.c.id == batch.id)).one()
        )


def _resume_stale(ws: Workspace, bank: Bank, actor: str) -> None:
    """Open payouts of other slots and cash-outs that nobody has touched for a while (wall-clock time)."""
    p = fundout_payouts.c
    with ws.engine.connect() as conn:
        stale = payouts.load(conn, p.status.in_(payouts.OPEN) & (p.updated_at < datetime.now(UTC) - STALE))
    payouts.drive(ws, bank, stale, actor)
    for slot in sorted({x.slot for x in stale if x.slot is not None}):
        with ws.engine.connect() as conn:
            batch = conn.execute(select(fundout_batches).where(fundout_batches.c.slot == slot)).one()
        _finish(ws, batch, batch.summary.get("due", 0), batch.summary.get("skipped", 0), actor)
