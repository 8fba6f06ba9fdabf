"""Payouts: hold, pay at the bank, post a PAYOUT entry, end the hold; the one path of fund-out and cash-out.

A payout row moves held -> sending -> paid -> posted, or to failed (hold released, no balance change).
Its id is the hold id, the ledger entry id and the bank reference, so every step can be repeated after
a crash without doing it twice:
- `held`: the bank has not been asked; send it.
- `sending`: asked, the process stopped before the answer was recorded: ask the bank's status first.
- `unknown`: the bank's answer could not be trusted (timeout) and its status could not be read: ask again.
- `paid`: post the entry (idempotent by id), then capture the hold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, func, insert, select, update

from ops_pipeline.db.schema import fundout_configs, fundout_payouts
from ops_pipeline.fundout.bank import ABSENT, FAILED, PAID, UNKNOWN, Bank, Outcome
from ops_pipeline.ledger import holds
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.money import to_major
from ops_pipeline.notify import Notification, enqueue
from ops_pipeline.workspace import Workspace

HELD, SENDING, POSTED = "held", "sending", "posted"
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

    def to_api(self) -> dict:
        return {
            "payoutId": self.id,
            "kind": self.kind,
            "businessId": self.business_id,
            "currency": self.currency,
            "amount": str(to_major(self.amount_minor, self.currency)),
            "status": self.status,
            "slot": self.slot.isoformat() if self.slot else None,
            "batchId": self.batch_id,
            "bankPayoutId": self.bank_payout_id,
            "error": self.error,
            "createdAt": self.created_at.isoformat(),
            "updatedAt": self.updated_at.isoformat(),
        }


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
    for start in range(0, len(full), 5000):
        conn.execute(insert(fundout_payouts), full[start : start + 5000])


def drive(ws: Workspace, bank: Bank, payouts: Iterable[Payout], actor: str) -> None:
    """Take open payouts as far as they can go; each chunk is recorded before the next is sent."""
    todo = [p for p in payouts if p.status in OPEN]
    for start in range(0, len(todo), CHUNK):
        _drive_chunk(ws, bank, todo[start : start + CHUNK], actor)


def _drive_chunk(ws: Workspace, bank: Bank, chunk: list[Payout], actor: str) -> None:
    by_id = {p.id: p for p in chunk}
    # 1. Uncertain ones: the bank's word decides. Never paid again unless the bank never saw them.
    uncertain = [p for p in chunk if p.status in (SENDING, UNKNOWN)]
    outcomes = bank.status([p.id for p in uncertain], "resumed") if uncertain else {}
    resend = [i for i, o in outcomes.items() if o.status == ABSENT and by_id[i].status == SENDING]
    for i in resend:
        del outcomes[i]
    # 2. Never sent (or sent by a process that stopped before the request left): send now.
    to_send = [p for p in chunk if p.status == HELD or p.id in resend]
    if to_send:
        _mark_sending(ws, [p.id for p in to_send])
        outcomes.update(bank.pay(to_send))
    # 3. Record, post what was paid, release what failed.
    paid = [p for p in chunk if p.status == PAID and p.id not in outcomes]  # recorded paid earlier
    _record(ws, by_id, outcomes, actor)
    paid += [by_id[i] for i, o in outcomes.items() if o.status == PAID]
    if paid:
        _post(ws, paid, {i: o.bank_payout_id for i, o in outcomes.items()}, actor)


def _mark_sending(ws: Workspace, ids: list[str]) -> None:
    p = fundout_payouts.c
    with ws.engine.begin() as conn:
        conn.execute(
            update(fundout_payouts)
            .where(p.id.in_(ids))
            .values(status=SENDING, attempts=p.attempts + 1, updated_at=datetime.now(UTC))
        )


def _record(ws: Workspace, by_id: dict[str, Payout], outcomes: dict[str, Outcome], actor: str) -> None:
    """Store the bank's answers; failed payouts release their holds and notify in the same transaction."""
    now = datetime.now(UTC)
    status_of = {PAID: PAID, FAILED: FAILED, ABSENT: FAILED, UNKNOWN: UNKNOWN}
    rows = [
        {"pid": i, "st": status_of[o.status], "bank": o.bank_payout_id, "err": o.detail}
        for i, o in outcomes.items()
    ]
    failed = [by_id[r["pid"]] for r in rows if r["st"] == FAILED]
    p = fundout_payouts.c
    with ws.engine.begin() as conn:
        if rows:
            conn.execute(
                update(fundout_payouts)
                .where(p.id == bindparam("pid"))
                .values(
                    status=bindparam("st"),
                    bank_payout_id=bindparam("bank"),
                    error=bindparam("err"),
                    updated_at=now,
                ),
                rows,
            )
        if failed:
            holds.end_many(
                conn,
                [f.id for f in failed],
                status=holds.RELEASED,
                actor=actor,
                reason="payout failed",
                now=now,
            )
            errors = {r["pid"]: r["err"] for r in rows}
            enqueue(conn, _notices(conn, failed, "fundout.failed", errors))


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
    post_entries(ws, entries, ingest_id=f"fundout:{paid[0].slot or 'cashout'}")
    p = fundout_payouts.c
    ids = [x.id for x in paid]
    with ws.engine.begin() as conn:
        for start in range(0, len(ids), 5000):
            conn.execute(
                update(fundout_payouts)
                .where(p.id.in_(ids[start : start + 5000]), p.status == PAID)
                .values(status=POSTED, error=None, updated_at=now)
            )
        holds.end_many(conn, ids, status=holds.CAPTURED, actor=actor, reason="paid out", now=now)
        enqueue(conn, _notices(conn, paid, "fundout.paid", {}))


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


def counts(conn: Connection, where) -> dict:
    """Payouts by status, and amounts by status and currency (exact decimal strings)."""
    p = fundout_payouts.c
    number: dict[str, int] = defaultdict(int)
    amounts: dict[str, dict[str, str]] = defaultdict(dict)
    query = (
        select(p.status, p.currency, func.count(), func.sum(p.amount_minor))
        .where(where)
        .group_by(p.status, p.currency)
        .order_by(p.status, p.currency)
    )
    for status, currency, n, total in conn.execute(query):
        number[status] += n
        amounts[status][currency] = str(to_major(int(total), currency))
    return {"count": dict(number), "amount": dict(amounts)}
