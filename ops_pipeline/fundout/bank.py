"""Payouts at the bank, in bulk (like a payout file): each item's reference is our payout id.

The bank answers every item: paid (with its payout id) or rejected (with why). An answer we cannot trust
(a timeout, a 5xx after the client's retries, a dropped connection, a 409 or 429) is never paid again
under a new reference: the bank is asked for the items' status; an item it has never seen is sent once
more under its own reference, or stays `absent` (held) for a later run. A few requests are in flight
at once, so one slow answer does not hold up the batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from ops_pipeline.money import to_major
from ops_pipeline.partners.clients import HttpOptions, bank_client
from ops_pipeline.settings import Settings

if TYPE_CHECKING:
    from ops_pipeline.fundout.payouts import Payout

PAID, FAILED, UNKNOWN, ABSENT = "paid", "failed", "unknown", "absent"
ITEMS_PER_REQUEST = 500
REFUSED = (400, 422)  # the request itself is wrong: nothing was paid
IN_FLIGHT = 4  # requests at once per caller
DRIVERS = 2  # callers at once: fund-out drives this many chunks at once (PostgreSQL)
OPTIONS = HttpOptions(timeout=30.0, retries=2, backoff=0.2, connections=IN_FLIGHT * DRIVERS)


@dataclass(frozen=True)
class Outcome:
    status: str  # paid | failed | unknown (ask again later) | absent (the bank has no such payout)
    bank_payout_id: str | None = None
    detail: str | None = None


def _error(response: httpx.Response) -> str:
    try:
        message = response.json().get("error")
    except ValueError:
        message = None
    return f"bank answered {response.status_code}: {message or response.text[:200]}"


def _each(items: list, call: Callable[[list], dict[str, Outcome]], size: int) -> dict[str, Outcome]:
    """`call` on slices of `items`, IN_FLIGHT at a time; the outcomes merged."""
    slices = [items[i : i + size] for i in range(0, len(items), size)]
    if len(slices) <= 1:
        return call(slices[0]) if slices else {}
    out: dict[str, Outcome] = {}
    with ThreadPoolExecutor(max_workers=min(IN_FLIGHT, len(slices))) as pool:
        for part in pool.map(call, slices):
            out.update(part)
    return out


class Bank:
    """The bank's payout API (`OPS_BANK_URL`, else the sandbox); thread-safe, close after use."""

    def __init__(self, settings: Settings, options: HttpOptions = OPTIONS):
        self.client = bank_client(settings, options)

    def pay(self, payouts: list[Payout]) -> dict[str, Outcome]:
        """Pay each payout once; outcomes by payout id."""
        return _each(payouts, self._pay_slice, ITEMS_PER_REQUEST)

    def status(self, ids: list[str], why: str) -> dict[str, Outcome]:
        """The bank's word on each payout; `why` says what made its outcome uncertain."""
        return _each(ids, lambda part: self._lookup(part, why), 2 * ITEMS_PER_REQUEST)

    def _pay_slice(self, payouts: list[Payout], again: bool = True) -> dict[str, Outcome]:
        """One bulk request. An uncertain answer asks the bank; what it never saw is sent once more under
        the same references (the bank takes a reference once, so a late first request pays nothing more);
        still unseen, it stays `absent` for a later run."""
        ids = [p.id for p in payouts]
        items = [
            {
                "business_id": p.business_id,
                "reference": p.id,
                "currency": p.currency,
                "amount": str(to_major(p.amount_minor, p.currency)),
            }
            for p in payouts
        ]
        key = "payouts:" + hashlib.sha256(",".join(ids).encode()).hexdigest()[:32]
        try:
            response = self.client.post(
                "/payouts/batch", json={"items": items}, headers={"Idempotency-Key": key}
            )
        except httpx.HTTPError as exc:
            return self._settle(payouts, f"no answer ({type(exc).__name__})", again)
        if response.status_code in REFUSED:
            return {i: Outcome(FAILED, detail=_error(response)) for i in ids}
        if response.status_code != 200:  # 5xx, 408, 409, 429, ...: the bank's word decides
            return self._settle(payouts, _error(response), again)
        answered = {item["reference"]: item for item in response.json()["items"]}
        out = {}
        for i in ids:
            item = answered.get(i)
            if item is None:
                out.update(self.status([i], "the bank's answer left this payout out"))
            elif item["status"] == PAID:
                out[i] = Outcome(PAID, item.get("payout_id"))
            else:
                out[i] = Outcome(FAILED, detail=f"bank rejected it: {item.get('error')}")
        return out

    def _settle(self, payouts: list[Payout], why: str, again: bool) -> dict[str, Outcome]:
        out = self.status([p.id for p in payouts], why)
        unseen = [p for p in payouts if out[p.id].status == ABSENT]
        if again and unseen:
            out.update(self._pay_slice(unseen, again=False))
        return out

    def _lookup(self, ids: list[str], why: str) -> dict[str, Outcome]:
        try:
            response = self.client.post("/payouts/lookup", json={"references": ids})
        except httpx.HTTPError as exc:
            return {
                i: Outcome(UNKNOWN, detail=f"{why}; status query failed ({type(exc).__name__})") for i in ids
            }
        if response.status_code != 200:
            return {i: Outcome(UNKNOWN, detail=f"{why}; status query: {_error(response)}") for i in ids}
        out = {i: Outcome(UNKNOWN, detail=f"{why}; the status query left it out") for i in ids}
        for item in response.json()["items"]:
            if item["status"] == PAID:
                out[item["reference"]] = Outcome(PAID, item.get("payout_id"))
            elif item["status"] == ABSENT:
                out[item["reference"]] = Outcome(
                    ABSENT, detail=f"{why}; the bank has no payout with this reference"
                )
        return out

    def close(self) -> None:
        self.client.close()
