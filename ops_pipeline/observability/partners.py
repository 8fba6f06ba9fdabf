"""Partner, bank and webhook calls in the metrics: an httpx transport that counts and times each attempt."""

from __future__ import annotations

import time

import httpx

from ops_pipeline.observability import metrics


class MeteredTransport(httpx.BaseTransport):
    """Wraps `inner`: every request to `partner` counted by outcome (`2xx`, `4xx`, `5xx`, or the error's
    name) and timed."""

    def __init__(self, inner: httpx.BaseTransport, partner: str):
        self.inner, self.partner = inner, partner
        self.seconds = metrics.PARTNER_SECONDS.labels(partner)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = self.inner.handle_request(request)
        except Exception as exc:
            metrics.PARTNER_CALLS.labels(self.partner, type(exc).__name__).inc()
            raise
        finally:
            self.seconds.observe(time.perf_counter() - started)
        metrics.PARTNER_CALLS.labels(self.partner, f"{response.status_code // 100}xx").inc()
        return response

    def close(self) -> None:
        self.inner.close()
