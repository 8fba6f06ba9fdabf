"""Manual cash-out: the merchant asks for an amount now; the fund-out payout path, no minimum balance.

`find`, `hold_payout` and `finish` are the steps every asked-for payout takes (cash-outs and payout
requests, `fundout.requests`): look up the idempotency key, hold and record, pay and post."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ops_pipeline import audit
from ops_pipeline.db.schema import fundout_payouts
from ops_pipeline.errors import Conflict, InvalidInput, NotFound
from ops_pipeline.fundout import payouts
from ops_pipeline.fundout.bank import Bank
from ops_pipeline.fundout.config import shown
from ops_pipeline.ledger.balances import get_balances
from ops_pipeline.ledger.holds import place_hold
from ops_pipeline.money import exponent, to_major, to_minor
from ops_pipeline.workspace import Workspace

MAX_MINOR = 2**63 - 1  # amounts are 64-bit integers of minor units in the ledger and the database
MAX_AMOUNT_TEXT = 40


def amount_minor(value: str | int | Decimal, currency: str) -> int:
    """A positive major-unit amount (decimal text or an exact JSON number) in minor units, within 64 bits."""
    text = value
    if isinstance(value, Decimal) and value.is_finite() and abs(value.adjusted()) < MAX_AMOUNT_TEXT:
        text = format(value, "f")
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 4 * MAX_AMOUNT_TEXT:
        text = str(value)
    if not isinstance(text, str) or len(text) > MAX_AMOUNT_TEXT or not text.isascii():
        raise InvalidInput(
            f"amount: {shown(value)} is not allowed; use a positive decimal number like 125.50"
        )
    minor = to_minor(text, currency, allow_zero=False)
    if minor > MAX_MINOR:
        raise InvalidInput(
            f"amount: {shown(value)} is too large; at most {to_major(MAX_MINOR, currency)} {currency}"
        )
    return minor


def _currency(ws: Workspace, business_id: str, currency: str | None) -> str:
    if currency:
        exponent(currency)  # names the field when it is not a currency
        return currency
    found = get_balances(ws, business_id)
    if len(found) != 1:
        raise InvalidInput(
            f"currency: required, business {business_id!r} has balances in "
            f"{', '.join(b.currency for b in found)}"
        )
    return found[0].currency


def cashout(
    ws: Workspace,
    business_id: str,
    amount: str | int | Decimal,
    currency: str | None,
    actor: str,
    idempotency_key: str | None = None,
    bank: Bank | None = None,
) -> payouts.Payout:
    """Hold `amount` of the available balance, pay it and post it; InsufficientFunds (409) if not there.

    The same `idempotency_key` again returns the first cash-out (finishing it if it was interrupted)."""
    currency = _currency(ws, business_id, currency)
    minor = amount_minor(amount, currency)
    payout = find(ws, idempotency_key)
    if payout is None:
        payout, _ = hold_payout(ws, business_id, currency, minor, kind="manual", actor=actor,
                                reason="cash-out", idempotency_key=idempotency_key)
    if (payout.business_id, payout.currency, payout.amount_minor) != (business_id, currency, minor):
        raise Conflict(f"Idempotency-Key: {idempotency_key!r} was used for another cash-out")
    return finish(ws, payout, actor, bank)


def find(ws: Workspace, idempotency_key: str | None) -> payouts.Payout | None:
    """The payout stored under `idempotency_key`, if any."""
    if not idempotency_key:
        return None
    with ws.engine.connect() as conn:
        found = payouts.load(conn, fundout_payouts.c.idempotency_key == idempotency_key)
    return found[0] if found else None


def hold_payout(
    ws: Workspace,
    business_id: str,
    currency: str,
    minor: int,
    *,
    kind: str,
    actor: str,
    reason: str,
    idempotency_key: str | None = None,
    asked: dict | None = None,
) -> tuple[payouts.Payout, bool]:
    """A new held payout (the hold, the row and its audit record `requested` with `reason` and `asked`,
    what was asked, in one transaction); InsufficientFunds (409) if the amount is not available.
    (payout, True); or (the other payout, False) when another caller took `idempotency_key` meanwhile."""
    now = datetime.now(UTC)
    row = dict(id=str(uuid.uuid4()), kind=kind, business_id=business_id, currency=currency,
               amount_minor=minor, slot=None, batch_id=None, idempotency_key=idempotency_key)

    def created(conn) -> None:
        payouts.insert_held(conn, [row], actor=actor, now=now)
        after = {"kind": kind, "business_id": business_id, "currency": currency, "amount_minor": minor}
        audit.record(conn, actor=actor, entity_type="payout", entity_id=row["id"], action="requested",
                     after={**after, **(asked or {})}, reason=reason)

    try:
        place_hold(ws, business_id, currency, minor, actor=actor, hold_id=row["id"], reason=reason,
                   reference=row["id"], on_placed=created)
    except IntegrityError:  # the same idempotency key at the same time: the row of the one that won
        other = find(ws, idempotency_key)
        if other is None:
            raise
        return other, False
    return get_payout(ws, row["id"]), True


def finish(ws: Workspace, payout: payouts.Payout, actor: str, bank: Bank | None = None) -> payouts.Payout:
    """Take `payout` as far as it goes now (bank, PAYOUT entry; nothing for one already ended); reloaded."""
    own = bank or Bank(ws.settings)
    try:
        payouts.drive(ws, own, [payout], actor)
    finally:
        if bank is None:
            own.close()
    return get_payout(ws, payout.id)


def get_payout(ws: Workspace, payout_id: str) -> payouts.Payout:
    with ws.read_engine.connect() as conn:
        found = payouts.load(conn, fundout_payouts.c.id == payout_id)
    if not found:
        raise NotFound(f"payoutId: {payout_id!r} does not exist")
    return found[0]


def list_payouts(ws: Workspace, business_id: str, limit: int = 100) -> list[payouts.Payout]:
    p = fundout_payouts.c
    with ws.read_engine.connect() as conn:
        rows = conn.execute(
            select(fundout_payouts)
            .where(p.business_id == business_id)
            .order_by(p.created_at.desc())
            .limit(limit)
        )
        return [payouts.from_row(r) for r in rows]
