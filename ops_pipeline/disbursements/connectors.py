"""Connectors of the pipeline steps: the ID mapper, the sponsor bank and beneficiary notification.

Each is an interface (a Protocol); `Connectors.from_settings` picks the implementations from the settings
(OpenG2P's factory): the HTTP mapper and bank at `OPS_G2P_MAPPER_URL` / `OPS_G2P_BANK_URL`, else the built-in
sandbox (`partners.g2p_sim`, same protocol); notifications go through the outbox (`ops_pipeline.notify`).
Tests may pass their own implementations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from sqlalchemy import Connection

from ops_pipeline.money import to_major
from ops_pipeline.notify import outbox
from ops_pipeline.partners.clients import HttpOptions, mapper_client, sponsor_bank_client
from ops_pipeline.settings import Settings

OPTIONS = HttpOptions(timeout=60.0, retries=2, backoff=0.2, connections=4)


class ConnectorError(Exception):
    """A connector call failed as a whole (the step is retried); the message says what the far end said."""


@dataclass(frozen=True)
class Resolved:
    beneficiary_id: str
    fa: str | None  # None: the mapper could not resolve the beneficiary
    name: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Payment:
    reference: str  # the disbursement id
    amount_minor: int
    currency: str
    beneficiary_id: str
    fa_type: str
    address: str
    bank_code: str | None
    narrative: str


@dataclass(frozen=True)
class PaymentOutcome:
    reference: str
    paid: bool
    error: str | None = None


class Mapper(Protocol):
    def resolve(self, beneficiary_ids: list[str]) -> dict[str, Resolved]: ...


class SponsorBank(Protocol):
    def check_funds(self, account: str, currency: str, amount_minor: int) -> bool: ...

    def block_funds(self, account: str, currency: str, amount_minor: int, key: str) -> str: ...

    def pay(self, block_reference: str, payments: list[Payment], key: str) -> list[PaymentOutcome]: ...


class Notifier(Protocol):
    def notify(self, conn: Connection, notifications: list[outbox.Notification]) -> int: ...


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code >= 300:
        try:
            message = response.json().get("error")
        except ValueError:
            message = response.text[:200]
        raise ConnectorError(f"{what}: answered {response.status_code}: {message}")
    return response.json()


class HttpMapper:
    """G2P-Connect style `resolve`: one request per batch."""

    def __init__(self, client: httpx.Client):
        self.client = client

    def resolve(self, beneficiary_ids: list[str]) -> dict[str, Resolved]:
        reply = _json(self.client.post("/g2p/mapper/resolve", json={"beneficiary_ids": beneficiary_ids}),
                      "mapper resolve")
        return {i["beneficiary_id"]: Resolved(i["beneficiary_id"], i.get("fa"), i.get("name"), i.get("error"))
                for i in reply["items"]}


class HttpSponsorBank:
    """The sponsor bank's funds and bulk payment API; each call with an `Idempotency-Key`."""

    def __init__(self, client: httpx.Client):
        self.client = client

    def check_funds(self, account: str, currency: str, amount_minor: int) -> bool:
        body = self._funds(account, currency, amount_minor)
        return bool(_json(self.client.post("/g2p/bank/check_funds", json=body), "check funds")
                    ["has_sufficient_funds"])

    def block_funds(self, account: str, currency: str, amount_minor: int, key: str) -> str:
        body = self._funds(account, currency, amount_minor)
        reply = self.client.post("/g2p/bank/block_funds", json=body, headers={"Idempotency-Key": key})
        return _json(reply, "block funds")["block_reference"]

    def pay(self, block_reference: str, payments: list[Payment], key: str) -> list[PaymentOutcome]:
        body = {"block_reference": block_reference, "items": [vars(p) for p in payments]}
        reply = self.client.post("/g2p/bank/payments", json=body, headers={"Idempotency-Key": key})
        return [PaymentOutcome(i["reference"], i["status"] == "paid", i.get("error"))
                for i in _json(reply, "bulk payment")["items"]]

    @staticmethod
    def _funds(account: str, currency: str, amount_minor: int) -> dict[str, Any]:
        amount = str(to_major(amount_minor, currency))
        return {"account_number": account, "currency": currency, "amount": amount}


class OutboxNotifier:
    """Beneficiary notifications as outbox rows in the step's transaction (delivered by the dispatcher)."""

    def notify(self, conn: Connection, notifications: list[outbox.Notification]) -> int:
        return outbox.enqueue(conn, notifications)


@dataclass
class Connectors:
    mapper: Mapper
    bank: SponsorBank
    notifier: Notifier = field(default_factory=OutboxNotifier)
    _clients: list[httpx.Client] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings) -> Connectors:
        mapper, bank = mapper_client(settings, OPTIONS), sponsor_bank_client(settings, OPTIONS)
        return cls(HttpMapper(mapper), HttpSponsorBank(bank), OutboxNotifier(), [mapper, bank])

    def close(self) -> None:
        for client in self._clients:
            client.close()
