"""Manual cash-out: the merchant asks for an amount now; the fund-out payout path, no minimum balance."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

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
    p = fundout_payouts.c
    with ws.engine.connect() as conn:
        prior = payouts.load(conn, p.idempotency_key == idempotency_key) if idempotency_key else []
    if prior:
        if (prior[0].business_id, prior[0].currency, prior[0].amount_minor) != (business_id, currency, minor):
            raise Conflict(f"Idempotency-Key: {idempotency_key!r} was used for another cash-out")
        payout = prior[0]
    else:
        now = datetime.now(UTC)
        row = dict(
            id=str(uuid.uuid4()),
            kind="manual",
            business_id=business_id,
            currency=currency,
            amount_minor=minor,
            slot=None,
            batch_id=None,
            idempotency_key=idempotency_key,
        )
        place_hold(
            ws,
            business_id,
            currency,
            minor,
            actor=actor,
            hold_id=row["id"],
            reason="cash-out",
            reference=row["id"],
            on_placed=lambda conn: payouts.insert_held(conn, [row], actor=actor, now=now),
        )
        payout = get_payout(ws, row["id"])
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
