"""The simulator over real HTTP: a bare ASGI app, and a uvicorn server on 127.0.0.1 in a thread.

Serve it alone with `uvicorn ops_pipeline.partners.app:create_app --factory --port 8100`, then point
`OPS_PARTNER_URL` and `OPS_BANK_URL` at it (one app answers both: their paths do not overlap).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.concurrency import run_in_threadpool

from ops_pipeline.partners.simulator import Simulator


class SimulatorApp:
    """A bare ASGI app: every path goes to `sim.handle`; on the event loop while no fault is injected,
    else on a worker thread (a delayed answer must not hold up the others). No framework in between:
    the simulator stands for a bank that answers fast, and its cost should not hide ours in benchmarks."""

    def __init__(self, sim: Simulator):
        self.sim = sim

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        raw, more = b"", True
        while more:
            message = await receive()
            raw += message.get("body", b"")
            more = message.get("more_body", False)
        status, reply = 400, {"error": "body: is not JSON"}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = ...
        if body is not ...:
            key = dict(scope["headers"]).get(b"idempotency-key")
            args = (scope["method"], scope["path"], body, key.decode() if key else None)
            handle = self.sim.handle
            status, reply = await run_in_threadpool(handle, *args) if self.sim.faulty else handle(*args)
        data = json.dumps(reply).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})


def create_app(sim: Simulator | None = None) -> SimulatorApp:
    return SimulatorApp(sim or Simulator())


@contextmanager
def serving(sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `sim` with uvicorn in a thread (port 0: a free one); yields its base URL."""
    app = create_app(sim)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, name="partner-simulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("partner simulator did not start")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        sim.clear_faults()
        server.should_exit = True
        thread.join(timeout=10)
