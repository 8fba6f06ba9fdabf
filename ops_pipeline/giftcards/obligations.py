"""What is owed to principals: one obligation per principal, period and currency, its bank transfer and the
confirmation that the money left.

Basis: the vouchers **redeemed** in the period (their `redeemed_at` on `period_start`..`period_end`
inclusive, in OPS_TIMEZONE), not those sold: the principal is owed for the goods it handed over, and its
terms charge commission on redemptions (`model.PrincipalTerms`). A program's redemptions are owed to its
first principal (`principal_ids[0]`: the brand or mall that issued it; a mall settles with its tenants).
Per voucher of face value F: commission = round half up(F x commission_percent / 100), discount = round
half up(F x discount_percent / 100), in the currency's minor units; owed = sum(F) - commission - discount,
exact integers. Due `settlement_days` after the period ends. Vouchers are owed in their own currency (no
conversion): one obligation per currency.

States: `open` -> `transfer_requested` (a payment job validated it) -> `sent` (the bank accepted the
transfer, reference = obligation id) -> `paid` only when the bank reports the transfer completed AND a
loaded statement (`bank_statement_entries`) has a `D` line with that reference, currency and amount. A
failed transfer makes it `failed` (a new payment job sends it again); a failed transfer or a statement line
with another amount opens a ticket (source `principal_payment`) with an alert. Every change is audited.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select, update

from ops_pipeline import audit
from ops_pipeline.crypto import cipher
from ops_pipeline.db.bulk import insert_rows
from ops_pipeline.db.schema import gc_obligations, gc_programs, gc_vouchers
from ops_pipeline.errors import Conflict, InvalidInput, NotFound
from ops_pipeline.giftcards.kinds import PRINCIPALS
from ops_pipeline.giftcards.model import PrincipalTerms
from ops_pipeline.giftcards.records import jsonable, keyset_page, require
from ops_pipeline.giftcards.transfers import TransferStatus
from ops_pipeline.jobqueue.jobtypes.base import open_sensitive
from ops_pipeline.lake.tables import BANK_STATEMENT_ENTRIES
from ops_pipeline.money import fee_minor, to_major
from ops_pipeline.tickets import sources
from ops_pipeline.workspace import Workspace

PREFIX = "GCO-"  # obligation ids, which are the transfers' references: what the payouts recon leaves out
OPEN, TRANSFER_REQUESTED, SENT, PAID, FAILED = "open", "transfer_requested", "sent", "paid", "failed"
STATUSES = (OPEN, TRANSFER_REQUESTED, SENT, PAID, FAILED)
TICKET_SOURCE = "principal_payment"  # reference: the obligation id
ENTITY = "gc_obligation"
MAX_PERIOD_DAYS = 366
LAST_DAY = date(9000, 1, 1)  # periods end before it: their due days stay within `date`
_AMOUNTS = ("vouchers", "gross_minor", "commission_minor", "discount_minor", "amount_minor")


@dataclass(frozen=True)
class Amounts:
    """The redemptions of one currency and what they come to, in minor units."""

    currency: str
    vouchers: int
    gross_minor: int
    commission_minor: int
    discount_minor: int

    @property
    def amount_minor(self) -> int:
        return self.gross_minor - self.commission_minor - self.discount_minor

    def values(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _AMOUNTS}


@dataclass(frozen=True)
class Confirmation:
    """What one confirmation pass found for an obligation: `paid`, `pending` (the bank is not done),
    `awaiting_statement` (completed, no statement line yet), `mismatch`, `failed`."""

    obligation_id: str
    outcome: str
    detail: str


def obligation_id(principal_id: str, start: date, end: date, currency: str) -> str:
    """The id (and bank reference) of a period's obligation: the same inputs give the same id."""
    seed = f"{principal_id}|{start}|{end}|{currency}".encode()
    return PREFIX + hashlib.sha256(seed).hexdigest()[:20].upper()


def view(row: Any) -> dict[str, Any]:
    """An obligation as the API and the CLI show it: amounts in major units as exact decimal text."""
    o = dict(row._mapping)
    for name in ("gross", "commission", "discount", "amount"):
        o[name] = str(to_major(o.pop(f"{name}_minor"), o["currency"]))
    return {k: jsonable(v) for k, v in o.items()}


def _terms(principal: Any) -> PrincipalTerms:
    return PrincipalTerms.model_validate(principal.details.get("terms") or {})


def _percent_micros(percent: Decimal) -> int:
    return int(percent * 1_000_000)  # Percent has at most 4 decimals: exact


def redeemed(conn: Connection, principal_id: str, start: date, end: date, terms: PrincipalTerms,
             tz: Any) -> dict[str, Amounts]:
    """The redemptions of the principal's programs from `start` to `end` (inclusive, local days), per
    currency, priced by `terms` (module docstring)."""
    programs = [p.program_id for p in conn.execute(select(gc_programs.c.program_id, gc_programs.c.details))
                if (p.details.get("principal_ids") or [None])[0] == principal_id]
    if not programs:
        return {}
    v = gc_vouchers.c
    since = datetime.combine(start, time(), tz).astimezone(UTC)
    until = datetime.combine(end + timedelta(days=1), time(), tz).astimezone(UTC)
    groups = conn.execute(select(v.currency, v.face_value_minor, func.count()).where(
        v.program_id.in_(programs), v.status == "redeemed", v.redeemed_at >= since, v.redeemed_at < until)
        .group_by(v.currency, v.face_value_minor).order_by(v.currency, v.face_value_minor)).all()
    commission, discount = _percent_micros(terms.commission_percent), _percent_micros(terms.discount_percent)
    out: dict[str, Amounts] = {}
    for currency, face, count in groups:
        prior = out.get(currency, Amounts(currency, 0, 0, 0, 0))
        out[currency] = Amounts(currency, prior.vouchers + count, prior.gross_minor + face * count,
                                prior.commission_minor + fee_minor(face, commission, 0) * count,
                                prior.discount_minor + fee_minor(face, discount, 0) * count)
    return out


def _check_period(start: date, end: date) -> None:
    if end >= LAST_DAY:
        raise InvalidInput(f"period_end: {end} is not before {LAST_DAY}")
    if end < start:
        raise InvalidInput(f"period_end: {end} is before period_start {start}")
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise InvalidInput(f"period_end: a period is at most {MAX_PERIOD_DAYS} days, "
                           f"not {(end - start).days + 1}")


def compute(ws: Workspace, principal_id: str, start: date, end: date, actor: str) -> list[dict[str, Any]]:
    """The principal's obligations for the period, one per currency with redemptions: made `open`, or
    recomputed while `open` or `failed` (a late redemption, new terms), else left as they are. Idempotent
    per (principal, period); a period overlapping another obligation's is a Conflict (paid twice else)."""
    _check_period(start, end)
    o = gc_obligations.c
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        principal = require(conn, PRINCIPALS, principal_id, "principal_id")
        terms = _terms(principal)
        overlapping = conn.execute(select(o.obligation_id, o.period_start, o.period_end).where(
            o.principal_id == principal_id, o.period_start <= end, o.period_end >= start,
            (o.period_start != start) | (o.period_end != end))).first()
        if overlapping is not None:
            raise Conflict(f"period: {start}..{end} overlaps obligation {overlapping.obligation_id} "
                           f"({overlapping.period_start}..{overlapping.period_end}) of {principal_id!r}")
        due_on = end + timedelta(days=terms.settlement_days)
        for amounts in redeemed(conn, principal_id, start, end, terms, ws.settings.tz).values():
            key = obligation_id(principal_id, start, end, amounts.currency)
            row = conn.execute(select(gc_obligations).where(o.obligation_id == key).with_for_update()).first()
            values = {**amounts.values(), "amount_minor": amounts.amount_minor,
                      "commission_percent": str(terms.commission_percent),
                      "discount_percent": str(terms.discount_percent), "due_on": due_on}
            if row is None:
                insert_rows(conn, gc_obligations, [{
                    "obligation_id": key, "principal_id": principal_id, "currency": amounts.currency,
                    "period_start": start, "period_end": end, **values, "status": OPEN, "attempt": 0,
                    "version": 1, "created_by": actor, "created_at": now, "updated_by": actor,
                    "updated_at": now}])
                audit.record(conn, actor=actor, entity_type=ENTITY, entity_id=key, action="compute",
                             after={k: jsonable(v) for k, v in values.items()})
                continue
            before = {k: jsonable(getattr(row, k)) for k in values}
            after = {k: jsonable(v) for k, v in values.items()}
            if row.status in (OPEN, FAILED) and before != after:
                _set(conn, row, actor, "recompute", values, reason="redemptions or terms changed")
        rows = conn.execute(select(gc_obligations).where(
            o.principal_id == principal_id, o.period_start == start, o.period_end == end)
            .order_by(o.currency)).all()
    return [view(r) for r in rows]


def _set(conn: Connection, row: Any, actor: str, action: str, values: dict[str, Any],
         reason: str | None = None) -> None:
    """Change an obligation (its version + 1), audited with the changed values before and after."""
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    conn.execute(update(gc_obligations).where(gc_obligations.c.obligation_id == row.obligation_id).values(
        **changed, version=row.version + 1, updated_by=actor, updated_at=datetime.now(UTC)))
    audit.record(conn, actor=actor, entity_type=ENTITY, entity_id=row.obligation_id, action=action,
                 before={k: jsonable(getattr(row, k)) for k in changed},
                 after={k: jsonable(v) for k, v in changed.items()}, reason=reason)


def _locked(conn: Connection, key: str) -> Any:
    row = conn.execute(select(gc_obligations).where(gc_obligations.c.obligation_id == key)
                       .with_for_update()).first()
    if row is None:
        raise NotFound(f"obligation_id: no obligation {key!r}")
    return row


def get(ws: Workspace, key: str) -> dict[str, Any]:
    with ws.read_engine.connect() as conn:
        row = conn.execute(select(gc_obligations).where(gc_obligations.c.obligation_id == key)).first()
    if row is None:
        raise NotFound(f"obligation_id: no obligation {key!r}")
    return view(row)


def list_obligations(ws: Workspace, *, principal_id: str | None = None, status: str | None = None,
                     after: str | None = None, limit: int = 50) -> tuple[list[dict[str, Any]], str | None]:
    """Obligations in id order after `after`, filtered; and the cursor of the next page."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status: {status!r} is not one of {', '.join(STATUSES)}")
    return keyset_page(ws, gc_obligations.c.obligation_id, view, after, limit, principal_id=principal_id,
                       status=status)


@dataclass(frozen=True)
class Payment:
    """A validated obligation, ready to be transferred (or already sent by this job: `transfer_id`)."""

    obligation_id: str
    principal_id: str
    currency: str
    amount_minor: int
    attempt: int
    account: dict[str, str]  # the principal's bank account, decrypted: keep in memory only
    transfer_id: str | None = None


def request_transfer(ws: Workspace, key: str, amount_minor: int, currency: str, job_id: int,
                     actor: str) -> Payment:
    """Validate the obligation for payment job `job_id` and mark it `transfer_requested`: it is open or
    failed, its amount equals the job's and the one computed again now, and its principal has bank
    details; Conflict or InvalidInput saying which check failed. Asked again by the same job (a retry, or
    its actions run again after a crash), it changes nothing and says what the job did already."""
    with ws.engine.begin() as conn:
        row = _locked(conn, key)
        mine = row.job_id == job_id and row.status in (TRANSFER_REQUESTED, SENT, PAID)
        if row.status not in (OPEN, FAILED) and not mine:
            by = f" by job {row.job_id}" if row.job_id else ""
            raise Conflict(f"obligation_id: obligation {key} is {row.status}{by}")
        if (currency, amount_minor) != (row.currency, row.amount_minor):
            raise Conflict(f"amount: obligation {key} is {to_major(row.amount_minor, row.currency)} "
                           f"{row.currency}, not {to_major(amount_minor, currency)} {currency}")
        principal = require(conn, PRINCIPALS, row.principal_id, "principal_id")
        account = open_sensitive(principal.details, PRINCIPALS.sensitive, cipher(ws.settings)).get(
            "bank_account")
        payment = Payment(key, row.principal_id, row.currency, row.amount_minor, row.attempt, account or {},
                          row.transfer_id)
        if mine:
            return payment
        now = redeemed(conn, row.principal_id, row.period_start, row.period_end, _terms(principal),
                       ws.settings.tz).get(row.currency)
        computed = now.amount_minor if now else 0
        if computed != row.amount_minor:
            raise Conflict(f"amount: obligation {key} is {to_major(row.amount_minor, row.currency)} "
                           f"{row.currency} but the redemptions now come to "
                           f"{to_major(computed, row.currency)}: compute it again")
        if not account:
            raise InvalidInput(f"principal_id: principal {row.principal_id!r} has no bank details")
        _set(conn, row, actor, "transfer_requested",
             {"status": TRANSFER_REQUESTED, "job_id": job_id, "attempt": row.attempt + 1, "transfer_id": None,
              "note": None}, reason=f"payment job {job_id}")
    return replace(payment, attempt=row.attempt + 1, transfer_id=None)


def mark_sent(ws: Workspace, key: str, job_id: int, transfer_id: str, actor: str) -> None:
    """The bank accepted the transfer of job `job_id`: `sent`, waiting for confirmation."""
    with ws.engine.begin() as conn:
        row = _locked(conn, key)
        if row.status == TRANSFER_REQUESTED and row.job_id == job_id:
            _set(conn, row, actor, "sent", {"status": SENT, "transfer_id": transfer_id},
                 reason=f"bank transfer {transfer_id}")
        elif (row.job_id, row.transfer_id) != (job_id, transfer_id):
            raise Conflict(f"obligation_id: obligation {key} is {row.status} by job {row.job_id}")


def _statement_lines(ws: Workspace, keys: list[str]) -> dict[str, list[tuple]]:
    """The `D` lines of loaded statements whose reference is one of `keys` (as sent or upper-cased)."""
    if not keys:
        return {}
    table = BANK_STATEMENT_ENTRIES.name
    with ws.lake.connect(table) as con:
        found = con.execute(
            "SELECT upper(trim(customer_reference)), statement_id || ':' || sequence, amount_minor, "
            f"currency FROM lake_{table} WHERE direction = 'D' AND upper(trim(customer_reference)) IN "
            f"({', '.join('?' * len(keys))}) ORDER BY loaded_at, statement_id, sequence", keys).fetchall()
    lines: dict[str, list[tuple]] = {}
    for reference, *line in found:
        lines.setdefault(reference, []).append(tuple(line))
    return lines


def confirm(ws: Workspace, actor: str, keys: Iterable[str] | None = None) -> list[Confirmation]:
    """Confirm the `sent` obligations (all, or `keys`): each becomes `paid` when the bank reports its
    transfer completed and a loaded statement has its D line for the amount; `failed` when the bank
    failed it. A failure or a statement line for another amount opens one ticket with an alert. Running
    it again changes nothing more; a paid obligation resolves its open ticket."""
    o = gc_obligations.c
    query = select(gc_obligations).where(o.status == SENT).order_by(o.obligation_id)
    if keys is not None:
        query = query.where(o.obligation_id.in_(sorted(set(keys))))
    with ws.read_engine.connect() as conn:
        rows = conn.execute(query).all()
    if not rows:
        return []
    lines = _statement_lines(ws, [r.obligation_id for r in rows])
    bank = TransferStatus(ws.settings)
    try:
        found = [_confirm_one(ws, r, bank.get(r.transfer_id), lines.get(r.obligation_id, []), actor)
                 for r in rows]
    finally:
        bank.close()
    events = [sources.Event(c.obligation_id, datetime.now(UTC), 2, c.detail)
              for c, ticket in found if ticket]
    sources.open_tickets_for_events(ws, TICKET_SOURCE, events)
    paid = [c.obligation_id for c, _ in found if c.outcome == PAID]
    sources.resolve_tickets_for(ws, TICKET_SOURCE, paid, actor, "paid: completed, on the statement")
    return [c for c, _ in found]


def _confirm_one(ws: Workspace, row: Any, transfer: dict[str, Any] | None, lines: list[tuple],
                 actor: str) -> tuple[Confirmation, bool]:
    """(the outcome, whether it needs a ticket: a new failure or a new mismatch)."""
    key = row.obligation_id
    amount = f"{to_major(row.amount_minor, row.currency)} {row.currency}"
    if transfer is None or transfer.get("status") == "pending":
        return Confirmation(key, "pending", f"transfer {row.transfer_id} is not finished at the bank"), False
    if transfer.get("status") == "failed":
        detail = (f"obligation {key} of {row.principal_id}: transfer {row.transfer_id} of {amount} failed: "
                  f"{transfer.get('reason') or 'no reason given'}")
        return Confirmation(key, FAILED, detail), _move(ws, key, actor, "failed", {"status": FAILED,
                                                                                   "note": detail})
    exact = [e for e, minor, currency in lines if (minor, currency) == (row.amount_minor, row.currency)]
    if exact:
        detail = f"transfer {row.transfer_id} completed, statement entry {exact[0]}"
        _move(ws, key, actor, "paid", {"status": PAID, "statement_entry": exact[0],
                                       "paid_at": datetime.now(UTC), "note": None})
        return Confirmation(key, PAID, detail), False
    if not lines:
        return Confirmation(key, "awaiting_statement", f"transfer {row.transfer_id} completed; no statement "
                            "line with its reference is loaded yet"), False
    seen = ", ".join(f"{to_major(minor, currency)} {currency} ({e})" for e, minor, currency in lines)
    detail = (f"obligation {key} of {row.principal_id}: transfer {row.transfer_id} of {amount} completed but "
              f"the statement shows {seen}")
    return Confirmation(key, "mismatch", detail), _move(ws, key, actor, "mismatch", {"note": detail})


def _move(ws: Workspace, key: str, actor: str, action: str, values: dict[str, Any]) -> bool:
    """Apply `values` to a still-`sent` obligation (audited); False when nothing changed (already so, or
    another pass moved it first)."""
    with ws.engine.begin() as conn:
        row = _locked(conn, key)
        if row.status != SENT or all(getattr(row, k) == v for k, v in values.items() if k != "paid_at"):
            return False
        _set(conn, row, actor, action, values, reason=values.get("note"))
    return True


def summary(found: list[Confirmation]) -> dict[str, int]:
    """How many confirmations had each outcome."""
    counts: dict[str, int] = {}
    for c in found:
        counts[c.outcome] = counts.get(c.outcome, 0) + 1
    return counts
