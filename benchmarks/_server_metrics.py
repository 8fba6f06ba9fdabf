"""What the server's own `/metrics` says about one load run: scraped before and after, the difference read
as latency quantiles of the route, per phase, and the process-wide suspects (event-loop lag, GC pauses,
pool and lock waits, transaction time)."""

from __future__ import annotations

import math
from collections import defaultdict

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple], float]


def scrape(port: int) -> Samples:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def delta(before: Samples, after: Samples) -> Samples:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def _matching(samples: Samples, name: str, **labels: str) -> Samples:
    want = set(labels.items())
    return {k: v for k, v in samples.items() if k[0] == name and want <= set(k[1])}


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(_matching(samples, name, **labels).values())


def quantile(samples: Samples, name: str, q: float, **labels: str) -> float | None:
    """The q-quantile (ms) of histogram `name` over the matching series, like PromQL's histogram_quantile:
    linear within the bucket; None without observations."""
    buckets: dict[float, float] = defaultdict(float)
    for (_, key), value in _matching(samples, f"{name}_bucket", **labels).items():
        buckets[float(dict(key)["le"])] += value
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank, lower, below = q * buckets[bounds[-1]], 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if math.isinf(bound):
                return round(lower * 1000, 2)  # above the last finite bound: its value
            share = (rank - below) / max(buckets[bound] - below, 1e-12)
            return round((lower + (bound - lower) * share) * 1000, 2)
        lower, below = bound, buckets[bound]
    return None


def where_time_goes(d: Samples, route: str, method: str) -> dict:
    """One run's server-side view of `method route`."""
    r = {"route": route, "method": method}
    slow = total(d, "ops_http_slow_requests_total", **r)
    phases = ("db", "pool", "lock", "other")
    return {
        "requests": int(total(d, "ops_http_requests_total", **r)),
        "server_p50_ms": quantile(d, "ops_http_request_duration_seconds", 0.5, **r),
        "server_p99_ms": quantile(d, "ops_http_request_duration_seconds", 0.99, **r),
        "phase_p99_ms": {p: quantile(d, "ops_http_request_phase_seconds", 0.99, phase=p, **r)
                         for p in phases},
        "slow_requests": int(slow),  # slower than 25 ms inside the server
        "slow_request_mean_ms": {
            p: round(total(d, "ops_http_slow_request_phase_seconds_total", phase=p, **r) / slow * 1000, 2)
            for p in phases} if slow else {},
        "event_loop_lag_p99_ms": quantile(d, "ops_event_loop_lag_seconds", 0.99),
        "event_loop_lag_max_bucket_ms": quantile(d, "ops_event_loop_lag_seconds", 1.0),
        "gc_pauses": {g: {"count": int(total(d, "ops_gc_pause_seconds_count", generation=g)),
                          "total_ms": round(total(d, "ops_gc_pause_seconds_sum", generation=g) * 1000, 1)}
                      for g in ("0", "1", "2")},
        "db_transaction_p99_ms": quantile(d, "ops_db_transaction_duration_seconds", 0.99),
        "db_pool_wait_p99_ms": quantile(d, "ops_db_pool_wait_seconds", 0.99),
        "lock_waits": int(total(d, "ops_db_lock_wait_seconds_count")),
    }
