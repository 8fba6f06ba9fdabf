"""Payout requests: another service asks to pay a merchant an amount of one currency, or everything available
above the merchant's fund-out minimum (`ALL`). Cash-out's path (`cashout.hold_payout`, `cashout.finish`):
hold, bank, PAYOUT entry; the payout (kind `request`) is then reconciled against the bank statement by the
payouts recon like any other, and a bank reversal returns it (`recon.payouts.apply_reversals`).

Every request carries an idempotency key: the same key with the same request answers the first payout
(finishing it if it was interrupted); with another request it is a Conflict naming the fields that differ.
What was asked is kept in the payout's `requested` audit record, with who and why.
"""

from __future__ import annotations

from decimal import Decimal

from ops_pipeline import audit
from ops_pipeline.errors import Conflict, InsufficientFunds, InvalidInput, NotFound
from ops_pipeline.fundout import cashout, config
from ops_pipeline.fundout.bank import Bank
from ops_pipeline.fundout.payouts import Payout
from ops_pipeline.ledger.balances import get_balances
from ops_pipeline.money import exponent, to_major
from ops_pipeline.workspace import Workspace

KIND = "request"
ALL = "all"
KEY_PREFIX = "request:"  # request keys apart from cash-out keys in the payouts' one key column
MAX_KEY = 200 - len(KEY_PREFIX)
MAX_REASON = 500
DEFAULT_REASON = "payout request"
FIELDS = {"business_id": "businessId", "currency": "currency", "amount": "amount", "reason": "reason"}


def _asked(business_id: object, currency: object, amount: object, reason: object) -> dict[str, str]:
    """The request, checked and in one form (amount `ALL` or exact major units), to store and compare."""
    if not isinstance(business_id, str) or not 0 < len(business_id) <= config.MAX_BUSINESS_ID:
        raise InvalidInput(f"businessId: {config.shown(business_id)} is not a business id "
                           f"(1-{config.MAX_BUSINESS_ID} characters)")
    if not isinstance(currency, str) or len(currency) != 3:
        raise InvalidInput(f"currency: {config.shown(currency)} is not an ISO 4217 currency")
    exponent(currency)  # names the field when it is not a currency
    if reason is not None and (not isinstance(reason, str) or not 0 < len(reason) <= MAX_REASON):
        raise InvalidInput(f"reason: {config.shown(reason)} is not allowed; 1-{MAX_REASON} characters")
    if amount != ALL:
        amount = str(to_major(cashout.amount_minor(amount, currency), currency))
    return {"business_id": business_id, "currency": currency, "amount": amount,
            "reason": reason or DEFAULT_REASON}


def _key(idempotency_key: str | None) -> str:
    if not idempotency_key or len(idempotency_key) > MAX_KEY:
        raise InvalidInput(f"Idempotency-Key: {config.shown(idempotency_key)} is required, "
                           f"1-{MAX_KEY} characters")
    return KEY_PREFIX + idempotency_key


def _same(ws: Workspace, payout: Payout, asked: dict[str, str], idempotency_key: str) -> None:
    """Conflict unless `payout` was asked for with `asked`, naming the fields that differ."""
    with ws.read_engine.connect() as conn:
        first = [a["after"] for a in audit.history(conn, "payout", payout.id) if a["action"] == "requested"]
    before = {k: (first[0] if first else {}).get(k) for k in FIELDS}
    differ = [FIELDS[k] for k in FIELDS if before[k] != asked[k]]
    if payout.kind != KIND or differ:
        named = ", ".join(differ) if payout.kind == KIND else "it was a cash-out"
        raise Conflict(f"Idempotency-Key: {idempotency_key!r} was used for another payout request ({named})")


def _all(ws: Workspace, business_id: str, currency: str) -> int:
    """What `ALL` pays: the available balance above the fund-out minimum (none without a configuration)."""
    found = get_balances(ws, business_id)
    available = next((b.available_minor for b in found if b.currency == currency), 0)
    try:
        minimum = config.get_config(ws, business_id).minimum_minor(exponent(currency))
    except NotFound:
        minimum = 0
    if available - minimum <= 0:
        raise InsufficientFunds(
            f"amount: 'all' finds nothing to pay: the available {to_major(available, currency)} {currency} "
            f"of merchant {business_id!r} is not above its minimum balance {to_major(minimum, currency)}"
        )
    return available - minimum


def _known(ws: Workspace, business_id: str) -> None:
    try:
        get_balances(ws, business_id)
    except NotFound:
        raise NotFound(f"businessId: {business_id!r} is no merchant with a balance") from None


def request_payout(
    ws: Workspace,
    business_id: str,
    currency: str,
    amount: str | int | Decimal,
    actor: str,
    idempotency_key: str | None,
    reason: str | None = None,
    bank: Bank | None = None,
) -> tuple[Payout, bool]:
    """Pay `amount` (major units, exact) or `ALL` to the merchant now: (the payout, True when this call
    created it). InsufficientFunds (409) naming the available amount; NotFound (404) for a merchant
    without any balance; Conflict (409) for a key used with another request."""
    asked = _asked(business_id, currency, amount, reason)
    key = _key(idempotency_key)
    payout = cashout.find(ws, key)
    created = payout is None
    if created:
        _known(ws, business_id)
        minor = _all(ws, business_id, currency) if asked["amount"] == ALL else cashout.amount_minor(
            asked["amount"], currency)
        payout, created = cashout.hold_payout(ws, business_id, currency, minor, kind=KIND, actor=actor,
                                              reason=asked["reason"], idempotency_key=key, asked=asked)
    if not created:
        _same(ws, payout, asked, idempotency_key)
    return cashout.finish(ws, payout, actor, bank), created

