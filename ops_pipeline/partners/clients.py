"""HTTP clients for the partner and the bank: real endpoints from settings, else the built-in sandbox.

Both clients time out, and retry with exponential backoff on 5xx answers and connection errors only
(never on 4xx, never on a read timeout: the action's caller decides about those). Callers send an
`Idempotency-Key` header, so a retried request never repeats its side effect.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from ops_pipeline.observability import tracing
from ops_pipeline.observability.partners import MeteredTransport
from ops_pipeline.partners.simulator import Simulator
from ops_pipeline.settings import Settings

RETRIED_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class HttpOptions:
    timeout: float = 10.0  # seconds, per request (connect, read, write, pool)
    retries: int = 2  # further tries after a 5xx or a connection error
    backoff: float = 0.2  # seconds before the first retry; doubles each time, with jitter
    connections: int = 20  # kept alive: at least the threads sharing the client, so none is closed in use


DEFAULT_HTTP = HttpOptions()


class RetryTransport(httpx.BaseTransport):
    """Wraps a transport: retries a request on 5xx and connection errors, sleeping between tries."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        retries: int,
        backoff: float,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.inner, self.retries, self.backoff, self.sleep = inner, retries, backoff, sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self.inner.handle_request(request)
            except RETRIED_ERRORS:
                if attempt >= self.retries:
                    raise
            else:
                if response.status_code < 500 or attempt >= self.retries:
                    return response
                response.close()
            self.sleep(self.backoff * 2**attempt * random.uniform(0.5, 1.5))
            attempt += 1

    def close(self) -> None:
        self.inner.close()


_sandboxes: dict[Path, Simulator] = {}
_sandboxes_lock = threading.Lock()


def sandbox(settings: Settings) -> Simulator:
    """The workspace's sandbox: one simulator whose state lives in `OPS_HOME/sandbox/partners.json`."""
    path = settings.home / "sandbox" / "partners.json"
    with _sandboxes_lock:
        return _sandboxes.setdefault(path, Simulator(state_file=path))


def _sandbox_transport(sim: Simulator) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        key = request.headers.get("Idempotency-Key")
        status, reply = sim.handle(request.method, request.url.path, body, key)
        return httpx.Response(status, json=reply)

    return httpx.MockTransport(handle)


def _client(url: str | None, settings: Settings, options: HttpOptions, name: str) -> httpx.Client:
    inner = httpx.HTTPTransport() if url else _sandbox_transport(sandbox(settings))
    return httpx.Client(
        base_url=url or f"http://{name}.sandbox",
        transport=RetryTransport(MeteredTransport(tracing.traced_transport(inner, name), name),
                                 options.retries, options.backoff),
        timeout=options.timeout,
        limits=httpx.Limits(max_connections=max(100, options.connections),
                            max_keepalive_connections=options.connections),
        headers={"User-Agent": "ops-pipeline"},
    )


def partner_client(settings: Settings, options: HttpOptions = DEFAULT_HTTP) -> httpx.Client:
    """The partner API (`OPS_PARTNER_URL`, else the sandbox)."""
    return _client(settings.partner_url, settings, options, "partner")


def bank_client(settings: Settings, options: HttpOptions = DEFAULT_HTTP) -> httpx.Client:
    """The bank API (`OPS_BANK_URL`, else the sandbox)."""
    return _client(settings.bank_url, settings, options, "bank")


def sponsor_bank_client(settings: Settings, options: HttpOptions = DEFAULT_HTTP) -> httpx.Client:
    """The G2P sponsor bank (`OPS_G2P_BANK_URL`, else the sandbox)."""
    return _client(settings.g2p_bank_url, settings, options, "g2p-bank")


def mapper_client(settings: Settings, options: HttpOptions = DEFAULT_HTTP) -> httpx.Client:
    """The G2P ID mapper (`OPS_G2P_MAPPER_URL`, else the sandbox)."""
    return _client(settings.g2p_mapper_url, settings, options, "g2p-mapper")


class Clients:
    """The partner and bank clients of one worker, made on first use and closed together."""

    def __init__(self, settings: Settings, options: HttpOptions = DEFAULT_HTTP):
        self.settings, self.options = settings, options
        self._made: dict[str, httpx.Client] = {}

    def get(self, api: str) -> httpx.Client:
        if api not in self._made:
            factory = {"partner": partner_client, "bank": bank_client}[api]
            self._made[api] = factory(self.settings, self.options)
        return self._made[api]

    def close(self) -> None:
        for client in self._made.values():
            client.close()
        self._made.clear()
