"""Payouts at the bank: pay with the payout id as reference and `Idempotency-Key`, or ask for the status.

An answer we cannot trust (a timeout, a 5xx after the client's retries, a 409 for a reference already
used) is never paid again: the payout's status is asked instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ops_pipeline.money import to_major
from ops_pipeline.partners.clients import HttpOptions, bank_client
from ops_pipeline.settings import Settings

PAID, FAILED, UNKNOWN, ABSENT = "paid", "failed", "unknown", "absent"
OPTIONS = HttpOptions(timeout=10.0, retries=2, backoff=0.2)


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


class Bank:
    """The bank's payout API (`OPS_BANK_URL`, else the sandbox); thread-safe, close after use."""

    def __init__(self, settings: Settings, options: HttpOptions = OPTIONS):
        self.client = bank_client(settings, options)

    def pay(self, payout_id: str, business_id: str, currency: str, amount_minor: int) -> Outcome:
        body = {
            "business_id": business_id,
            "reference": payout_id,
            "currency": currency,
            "amount": str(to_major(amount_minor, currency)),
        }
        try:
            key = {"Idempotency-Key": f"payout:{payout_id}"}
            response = self.client.post("/payouts", json=body, headers=key)
        except httpx.HTTPError as exc:
            return self.status(payout_id, f"no answer ({type(exc).__name__})")
        if response.status_code in (200, 201):
            return Outcome(PAID, response.json().get("payout_id"))
        if response.status_code == 409 or response.status_code >= 500:
            return self.status(payout_id, _error(response))
        return Outcome(FAILED, detail=_error(response))

    def status(self, payout_id: str, why: str | None = None) -> Outcome:
        """Ask the bank about a payout; `why` says what made the outcome uncertain."""
        try:
            response = self.client.get(f"/payouts/{payout_id}")
        except httpx.HTTPError as exc:
            return Outcome(UNKNOWN, detail=f"{why}; status query failed ({type(exc).__name__})")
        if response.status_code == 200:
            body = response.json()
            if body.get("status") == PAID:
                return Outcome(PAID, body.get("payout_id"))
            return Outcome(FAILED, body.get("payout_id"), f"bank status {body.get('status')!r}")
        if response.status_code == 404:
            return Outcome(ABSENT, detail=f"{why}; the bank has no payout with this reference")
        return Outcome(UNKNOWN, detail=f"{why}; status query: {_error(response)}")

    def close(self) -> None:
        self.client.close()
