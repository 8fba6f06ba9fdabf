"""How busy the machine is: CPU jiffies from /proc/stat, and waiting for a quiet moment before measuring."""

from __future__ import annotations

import time
from pathlib import Path


def busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def wait_idle(max_busy: float, max_wait: float) -> dict:
    """Wait until the machine is busy less than `max_busy` (fraction of all CPUs) over 3 s."""
    started = time.perf_counter()
    while True:
        b0, t0 = busy_jiffies()
        time.sleep(3)
        b1, t1 = busy_jiffies()
        busy = (b1 - b0) / max(1, t1 - t0)
        waited = time.perf_counter() - started
        if busy <= max_busy or waited >= max_wait:
            return {"busy_before": round(busy, 2), "waited_s": round(waited)}
