"""Actions: the steps of a job. Each runs once per job; its result is kept in the job's progress.

An action is anything with a `name` and `run(ctx) -> dict`. Most call the partner or the bank with an
`Idempotency-Key` of `job-{job_id}-{action}`, so repeating a request whose answer was lost never
repeats its effect. Failures raise `ActionError`, saying whether another attempt may succeed:
timeouts, connection errors and 5xx (also 408, 429) may; other 4xx and bad input never do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from pydantic import BaseModel

from ops_pipeline.errors import Conflict
from ops_pipeline.jobqueue.model import Job
from ops_pipeline.ledger import adjustments
from ops_pipeline.money import to_minor
from ops_pipeline.partners.clients import Clients
from ops_pipeline.workspace import Workspace

RETRYABLE_STATUSES = frozenset({408, 429})


class ActionError(Exception):
    """An action failed; `retryable` says whether the job should be attempted again."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


@dataclass
class ActionContext:
    """What an action sees: the job, its decrypted attributes (in memory only), earlier results, clients."""

    ws: Workspace
    job: Job
    attributes: BaseModel
    results: dict[str, dict[str, Any]]
    clients: Clients

    def idempotency_key(self, action: str) -> str:
        return f"job-{self.job.id}-{action}"

    def produced(self, field: str) -> Any:
        """`field` from the latest earlier result holding it (e.g. the deposit `reference`)."""
        for result in reversed(list(self.results.values())):
            if field in result:
                return result[field]
        raise ActionError(f"no earlier action produced {field!r}", retryable=False)

    def request(self, api: str, action: str, method: str, path: str, body: dict[str, Any] | None) -> dict:
        """Call `api` ("partner" or "bank") with this action's idempotency key; the JSON answer."""
        where = f"{api} {method} {path}"
        try:
            response = self.clients.get(api).request(
                method, path, json=body, headers={"Idempotency-Key": self.idempotency_key(action)}
            )
        except httpx.TimeoutException as exc:
            raise ActionError(f"{where}: timed out ({type(exc).__name__})", retryable=True) from None
        except httpx.TransportError as exc:
            raise ActionError(f"{where}: {type(exc).__name__}: {exc}", retryable=True) from None
        if response.status_code >= 400:
            retryable = response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES
            raise ActionError(f"{where} answered {response.status_code}: {_reason(response)}", retryable)
        return response.json()


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error"))[:300]
    except (ValueError, AttributeError):
        return response.text[:300]


class Action(Protocol):
    name: str

    def run(self, ctx: ActionContext) -> dict[str, Any]: ...


@dataclass(frozen=True)
class HttpAction:
    """One request; `path` is formatted with the attributes (e.g. "/programs/{program_id}/principals")."""

    name: str
    api: str
    method: str
    path: str
    body: Callable[[ActionContext], dict[str, Any]]

    def run(self, ctx: ActionContext) -> dict[str, Any]:
        path = self.path.format(**dict(ctx.attributes))
        return ctx.request(self.api, self.name, self.method, path, self.body(ctx))


@dataclass(frozen=True)
class CreditWalletInLedger:
    """Credit a distributor's wallet (its merchant balance) with an ADJUSTMENT entry for the job's deposit.

    The entry id is derived from the job id, so running this again (a retry, a rescued job) is a no-op.
    """

    name: str = "credit_ledger"

    def run(self, ctx: ActionContext) -> dict[str, Any]:
        a = ctx.attributes
        try:
            done = adjustments.adjust(
                ctx.ws, a.distributor_id, a.currency, to_minor(a.amount, a.currency),
                ctx.produced("reference") or f"job {ctx.job.id}", actor=f"job:{ctx.job.id}",
                entry_id=ctx.idempotency_key(self.name), entry_type="wallet_topup",
                ingest_id=f"job-{ctx.job.id}",
            )
        except Conflict as exc:
            raise ActionError(f"ledger: {exc}", retryable=False) from None
        return {"entry_id": done.entry.entry_id, "posted": int(done.posted),
                "lake_version": done.lake_version}


@dataclass(frozen=True)
class WriteRecord:
    """Create the gift-card record (`kind`: principal, program or party) the job's attributes describe,
    audited as the job's doing. A record already there is kept (a retry, or one made by hand first); a
    record it refers to that does not exist fails the job with that reason."""

    kind: str
    data: Callable[[ActionContext], dict[str, Any]]

    @property
    def name(self) -> str:
        return f"record_{self.kind}"

    def run(self, ctx: ActionContext) -> dict[str, Any]:
        from ops_pipeline.errors import InvalidInput, NotFound
        from ops_pipeline.giftcards import records
        from ops_pipeline.giftcards.kinds import KINDS  # giftcards imports the job types: not at the top

        kind, data = KINDS[self.kind], self.data(ctx)
        key = data[kind.key]
        try:
            records.get(ctx.ws, kind, key)
            return {kind.key: key, "created": False}
        except NotFound:
            pass
        job = ctx.job
        reason = f"{job.type} job {job.id} by {job.created_by}" + (
            f", approved by {job.approved_by}" if job.approved_by else "")
        try:
            records.create(ctx.ws, kind, data, f"job:{job.id}", reason=reason)
        except (InvalidInput, Conflict) as exc:
            raise ActionError(f"{kind.noun} {key!r}: {exc}", retryable=False) from None
        return {kind.key: key, "created": True}
