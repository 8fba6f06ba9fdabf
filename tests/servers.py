"""The real `ops-pipeline` in a subprocess, for tests of what a deployment sees (log lines, spans)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ops_pipeline.workspace import Workspace

CLI = str(Path(sys.executable).with_name("ops-pipeline"))
ROOT = Path(__file__).resolve().parent.parent


def environment(ws: Workspace, **extra: str) -> dict[str, str]:
    """The test's environment for `ws`, with no OTEL_* or OPS_LOG_* setting but those in `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPS_LOG_"))}
    s = ws.settings
    env.update(OPS_HOME=str(s.home), OPS_DATABASE_URL=s.database_url, PYTHONPATH=str(ROOT))
    if s.partner_url:
        env.update(OPS_PARTNER_URL=s.partner_url, OPS_BANK_URL=s.bank_url or s.partner_url)
    return {**env, **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def api(env: dict[str, str], stderr: Path) -> Iterator[str]:
    """`ops-pipeline api` on a free port, its stderr to the file `stderr`; yields its base URL once healthy,
    and stops it (SIGTERM: a graceful shutdown, exporters flushed) afterwards."""
    port = free_port()
    with stderr.open("wb") as err:
        proc = subprocess.Popen([CLI, "api", "--port", str(port)], env=env, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"ops-pipeline api exited with {proc.returncode}: {stderr.read_text()}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"ops-pipeline api did not become healthy: {stderr.read_text()}"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)


def run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`ops-pipeline ARGS` to its end; exit code 0 expected."""
    done = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done
