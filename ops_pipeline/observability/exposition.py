"""`/metrics`: every process's counters and histograms from the multiprocess directory, plus the state
gauges read from the database, in the Prometheus text format.

Processes that exited leave their files behind (their counts must not vanish: a counter that drops looks
like a reset). `compact` folds the files of dead processes into one `*_merged.db` per kind, so the
directory, and the time to scrape it, stays small however many CLI commands and Dagster runs came and went.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

from ops_pipeline.observability import metrics
from ops_pipeline.observability.state import StateCollector
from ops_pipeline.observability.timing import record_gc_pauses
from ops_pipeline.workspace import Workspace

CONTENT_TYPE = CONTENT_TYPE_LATEST
MERGED = "merged"


class _Processes(MultiProcessCollector):
    """Every process's files, dead ones compacted first."""

    def collect(self):
        record_gc_pauses()
        compact(metrics.DIRECTORY)
        return super().collect()


def registry(ws: Workspace) -> CollectorRegistry:
    """All processes' events and the workspace's state; collected afresh on every scrape."""
    found = CollectorRegistry(auto_describe=False)
    _Processes(found, path=str(metrics.DIRECTORY))
    found.register(StateCollector(ws))
    return found


def render(ws: Workspace) -> bytes:
    """The exposition text (what `GET /metrics` answers)."""
    return generate_latest(registry(ws))


def serve(ws: Workspace, port: int, host: str = "127.0.0.1") -> None:
    """`/metrics` on its own port, in a daemon thread: for a worker host that runs no API."""
    start_http_server(port, host, registry(ws))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dead_files(directory: Path) -> dict[str, list[Path]]:
    """Files of exited processes, by prefix (`counter`, `histogram`, `gauge_mostrecent`...)."""
    found: dict[str, list[Path]] = {}
    for path in directory.glob("*.db"):
        prefix, _, pid = path.stem.rpartition("_")
        if pid.isascii() and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            found.setdefault(prefix, []).append(path)
    return found


def compact(directory: Path) -> int:
    """Fold dead processes' files into `<prefix>_merged.db` (sums; the latest value for `mostrecent`
    gauges); returns how many files were folded. One compactor at a time (a lock file)."""
    folded = 0
    with open(directory / ".compact.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for prefix, paths in _dead_files(directory).items():
            latest = prefix.startswith("gauge_") and prefix.endswith("mostrecent")
            if prefix.startswith("gauge_") and not latest:
                for path in paths:  # other gauge modes describe live processes only
                    path.unlink()
                continue
            merged = MmapedDict(str(directory / f"{prefix}_{MERGED}.db"))
            try:
                for path in paths:
                    for key, value, stamp, _ in MmapedDict.read_all_values_from_file(str(path)):
                        old, old_stamp = merged.read_value(key)
                        if latest:
                            if stamp >= old_stamp:
                                merged.write_value(key, value, stamp)
                        else:
                            merged.write_value(key, old + value, 0.0)
                    path.unlink()  # a crash just before this would count the file twice: a one-call window
                    folded += 1
            finally:
                merged.close()
    return folded
