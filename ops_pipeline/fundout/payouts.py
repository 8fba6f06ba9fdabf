"""Payouts: hold, pay at the bank, post a PAYOUT entry, end the hold; the one path of fund-out and cash-out.

A payout row moves held -> sending -> paid -> posted, or to failed (hold released, no balance change).
Its id is the hold id, the ledger entry id and the bank reference, so every step can be repeated after
a crash without doing it twice:
- `held`: the bank has not been asked; send it.
- `sending`: asked, the process stopped before the answer was recorded: ask the bank's status first.
- `unknown`: the bank's answer could not be trusted (timeout) and its status could not be read: ask again.
- `paid`: post the entry (idempotent by id), then capture the hold.
A posted payout the bank reversed becomes `returned` (`ops_pipeline.recon.payouts.apply_reversals`).
"""

from __future__ import annotations

import contextvars
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Connection, bindparam, func, select, text, update

from ops_pipeline.db.bulk import insert_rows
from ops_pipeline.db.schema import fundout_configs, fundout_payouts
from ops_pipeline.fundout.bank import ABSENT, DRIVERS, FAILED, PAID, UNKNOWN, Bank, Outcome
from ops_pipeline.ledger import holds
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.money import to_major
from ops_pipeline.notify import Notification, enqueue
from ops_pipeline.observability.metrics import FUNDOUT_PAYOUTS
from ops_pipeline.workspace import Workspace

HELD, SENDING, POSTED, RETURNED = "held", "sending", "posted", "returned"
OPEN = (HELD, SENDING, UNKNOWN, PAID)
CHUNK = 2000  # payouts sent, recorded and posted together


@dataclass(frozen=True)
class Payout:
    id: str
    kind: str
    business_id: str
    currency: str
    amount_minor: int
    status: str
    slot: datetime | None
    batch_id: int | None
    attempts: int
    bank_payout_id: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def amount(self) -> Decimal:
        """Major units, exact."""
        return to_major(self.amount_minor, self.currency)


def from_row(row) -> Payout:
    m = row._mapping
    return Payout(**{k: m[k] for k in Payout.__dataclass_fields__})


def load(conn: Connection, where) -> list[Payout]:
    return [
        from_row(r) for r in conn.execute(select(fundout_payouts).where(where).order_by(fundout_payouts.c.id))
    ]


def insert_held(conn: Connection, rows: list[dict], *, actor: str, now: datetime) -> None:
    """New payout rows (id, kind, business_id, currency, amount_minor, slot, batch_id), status held."""
    full = [
        dict(r, status=HELD, attempts=0, requested_by=actor, created_at=now, updated_at=now) for r in rows
    ]
    insert_rows(conn, fundout_payouts, full)


def drive(ws: Workspace, bank: Bank, payouts: Iterable[Payout], actor: str) -> None:
    """Take open payouts as far as they can go, a chunk at a time; each driver records a chunk before it
    sends its next. On PostgreSQL DRIVERS chunks go at once, so that one's database work runs while another
    waits for the bank or for Python (on SQLite writers take turns anyway)."""
    todo = [p for p in payouts if p.status in OPEN]
    chunks = [todo[start : start + CHUNK] for start in range(0, len(todo), CHUNK)]
    if len(chunks) < 2 or ws.engine.dialect.name != "postgresql":
        for chunk in chunks:
            _drive_chunk(ws, bank, chunk, actor)
        return
    with ThreadPoolExecutor(max_workers=DRIVERS) as pool:
        # Each chunk in a copy of the caller's context: its log fields and trace spans go with it.
        run = [contextvars.copy_context().run for _ in chunks]
        futures = [pool.submit(r, _drive_chunk, ws, bank, c, actor) for r, c in zip(run, chunks, strict=True)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:  # chunks not started stay open for the next run, as if sequential
                future.cancel()
            raise


def _drive_chunk(ws: Workspace, bank: Bank, chunk: list[Payout], actor: str) -> None:
    by_id = {p.id: p for p in chunk}
    # 1. Uncertain ones: the bank's word decides.
    uncertain = [p for p in chunk if p.status in (SENDING, UNKNOWN)]
    outcomes = bank.status([p.id for p in uncertain], "resumed") if uncertain else {}
    # 2. Never sent, or never seen by the bank: send under the payout's own reference (taken once).
    unseen = {i for i, o in outcomes.items() if o.status == ABSENT}
    claimed = _claim(ws, [p.id for p in chunk if p.status == HELD or p.id in unseen])
    for i in unseen:
        del outcomes[i]
    outcomes.update(bank.pay([by_id[i] for i in claimed]))
    # 3. Record, post what was paid, release what failed; only the moves this driver made count.
    paid = [p.id for p in chunk if p.status == PAID and p.id not in outcomes]  # recorded paid earlier
    paid += _record(ws, by_id, outcomes, actor)
    if paid:
        _post(ws, [by_id[i] for i in paid], {i: o.bank_payout_id for i, o in outcomes.items()}, actor)


def _claim(ws: Workspace, ids: list[str]) -> list[str]:
    """Mark open payouts as being sent; the ids that were still open (never a posted or failed one)."""
    if not ids:
        return []
    p = fundout_payouts.c
    with ws.engine.begin() as conn:
        return (
            conn.execute(
                update(fundout_payouts)
                .where(p.id.in_(ids), p.status.in_((HELD, SENDING, UNKNOWN)))
                .values(status=SENDING, attempts=p.attempts + 1, updated_at=datetime.now(UTC))
                .returning(p.id)
            )
            .scalars()
            .all()
        )


def _record(ws: Workspace, by_id: dict[str, Payout], outcomes: dict[str, Outcome], actor: str) -> list[str]:
    """Store the bank's answers on payouts still in flight; failed ones release their holds and notify in
    the same transaction. Returns the ids this call moved to paid. A payout the bank still has not seen
    (`absent`) stays held as unknown: a later run asks again."""
    now = datetime.now(UTC)
    status_of = {PAID: PAID, FAILED: FAILED, ABSENT: UNKNOWN, UNKNOWN: UNKNOWN}
    answers = [(i, status_of[o.status], o.bank_payout_id, o.detail) for i, o in outcomes.items()]
    with ws.engine.begin() as conn:
        moved = _move(conn, answers, now)
        failed = [by_id[i] for i in moved.get(FAILED, [])]
        if failed:
            holds.end_many(
                conn,
                [f.id for f in failed],
                status=holds.RELEASED,
                actor=actor,
                reason="payout failed",
                now=now,
            )
            enqueue(
                conn,
                _notices(conn, failed, "fundout.failed", {i: o.detail for i, o in outcomes.items()}),
            )
    _count("failed", len(failed))
    # Left for a later run: counted when a payout becomes so, not again by each run that finds it so.
    _count("pending", sum(by_id[i].status != UNKNOWN for i in moved.get(UNKNOWN, [])))
    return moved.get(PAID, [])


def _count(status: str, n: int) -> None:
    """Payouts that ended a drive paid, failed or pending: counted after their transaction committed."""
    if n:
        FUNDOUT_PAYOUTS.labels(status).inc(n)


# PostgreSQL moves a chunk in one statement from arrays (each payout its own status, bank id and error).
_PG_MOVE = text(
    "UPDATE fundout_payouts SET status = a.status, bank_payout_id = a.bank, error = a.err, updated_at = :now"
    " FROM unnest(CAST(:ids AS TEXT[]), CAST(:statuses AS TEXT[]), CAST(:banks AS TEXT[]),"
    " CAST(:errs AS TEXT[])) AS a(id, status, bank, err)"
    f" WHERE fundout_payouts.id = a.id AND fundout_payouts.status IN ('{SENDING}', '{UNKNOWN}')"
    " RETURNING fundout_payouts.id, fundout_payouts.status"
)


def _move(
    conn: Connection, answers: list[tuple[str, str, str | None, str | None]], now: datetime
) -> dict[str, list[str]]:
    """Set (payout id, status, bank payout id, error) on the payouts still sending or unknown; the ids moved,
    by status."""
    moved: dict[str, list[str]] = defaultdict(list)
    if not answers:
        return moved
    if conn.dialect.name == "postgresql":
        ids, statuses, banks, errs = (list(c) for c in zip(*answers, strict=True))
        params = {"ids": ids, "statuses": statuses, "banks": banks, "errs": errs, "now": now}
        for i, status in conn.execute(_PG_MOVE, params):
            moved[status].append(i)
        return moved
    p = fundout_payouts.c
    groups: dict[str, list[str]] = defaultdict(list)
    for i, status, _, _ in answers:
        groups[status].append(i)
    for status, ids in groups.items():
        moved[status] = list(
            conn.execute(
                update(fundout_payouts)
                .where(p.id.in_(ids), p.status.in_((SENDING, UNKNOWN)))
                .values(status=status, updated_at=now)
                .returning(p.id)
            ).scalars()
        )
    ours = {i for ids in moved.values() for i in ids}
    details = [{"pid": i, "bank": b, "err": e} for i, _, b, e in answers if i in ours]
    if details:
        conn.execute(
            update(fundout_payouts)
            .where(p.id == bindparam("pid"))
            .values(bank_payout_id=bindparam("bank"), error=bindparam("err")),
            details,
        )
    return moved


def _post(ws: Workspace, paid: list[Payout], bank_ids: dict[str, str | None], actor: str) -> None:
    """One ledger commit for the chunk's PAYOUT entries, then the holds captured and the merchants told."""
    now = datetime.now(UTC)
    entries = [
        Entry(
            source="PAYOUT",
            entry_id=p.id,
            merchant_id=p.business_id,
            currency=p.currency,
            amount_minor=-p.amount_minor,
            type="payout",
            reference=bank_ids.get(p.id) or p.bank_payout_id,
            operation_date=now,
        )
        for p in paid
    ]
    post_entries(ws, entries, ingest_id="fundout")  # the entry id is the payout id
    p = fundout_payouts.c
    with ws.engine.begin() as conn:
        posted = set(
            conn.execute(
                update(fundout_payouts)
                .where(p.id.in_([x.id for x in paid]), p.status == PAID)
                .values(status=POSTED, error=None, updated_at=now)
                .returning(p.id)
            ).scalars()
        )
        ids = [x.id for x in paid if x.id in posted]  # another driver may have posted some already
        holds.end_many(conn, ids, status=holds.CAPTURED, actor=actor, reason="paid out", now=now)
        enqueue(conn, _notices(conn, [x for x in paid if x.id in posted], "fundout.paid", {}))
    _count("paid", len(posted))


def _notices(conn: Connection, payouts: list[Payout], event: str, errors: dict[str, str | None]) -> list:
    emails = _emails(conn, {p.business_id for p in payouts})
    verb = "paid" if event == "fundout.paid" else "failed"
    out = []
    for p in payouts:
        amount = f"{to_major(p.amount_minor, p.currency)} {p.currency}"
        payload = {
            "businessId": p.business_id,
            "payoutId": p.id,
            "kind": p.kind,
            "currency": p.currency,
            "amount": str(to_major(p.amount_minor, p.currency)),
            "status": verb,
            "slot": p.slot.isoformat() if p.slot else None,
        }
        if errors.get(p.id):
            payload["error"] = errors[p.id]
        out.append(
            Notification(
                event=event,
                subject=f"Payout of {amount} {verb}",
                payload=payload,
                email=emails.get(p.business_id),
                entity_type="payout",
                entity_id=p.id,
            )
        )
    return out


def _emails(conn: Connection, business_ids: set[str]) -> dict[str, str]:
    c = fundout_configs.c
    found: dict[str, str] = {}
    ids = sorted(business_ids)
    for start in range(0, len(ids), 5000):
        rows = conn.execute(
            select(c.business_id, c.notify_email).where(
                c.business_id.in_(ids[start : start + 5000]), c.notify_email.is_not(None)
            )
        )
        found.update(dict(rows.all()))
    return found


def counts(conn: Connection, where) -> tuple[dict[str, int], dict[str, dict[str, Decimal]]]:
    """Payouts by status, and their amounts by status and currency (exact, major units)."""
    p = fundout_payouts.c
    number: dict[str, int] = defaultdict(int)
    amounts: dict[str, dict[str, Decimal]] = defaultdict(dict)
    query = (
        select(p.status, p.currency, func.count(), func.sum(p.amount_minor))
        .where(where)
        .group_by(p.status, p.currency)
        .order_by(p.status, p.currency)
    )
    for status, currency, n, total in conn.execute(query):
        number[status] += n
        amounts[status][currency] = to_major(int(total), currency)
    return dict(number), dict(amounts)
