"""The simulator over real HTTP: a FastAPI app, and a uvicorn server on 127.0.0.1 in a thread.

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
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ops_pipeline.partners.simulator import Simulator


def create_app(sim: Simulator | None = None) -> FastAPI:
    """Every path goes to `sim.handle` in a worker thread, so a slow answer does not block the others."""
    sim = sim or Simulator()
    app = FastAPI(title="ops-pipeline partner and bank simulator", version="0.1.0", openapi_url=None)
    app.state.sim = sim

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def dispatch(path: str, request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return JSONResponse({"error": "body: is not JSON"}, status_code=400)
        status, reply = await run_in_threadpool(
            sim.handle, request.method, f"/{path}", body, request.headers.get("Idempotency-Key")
        )
        return JSONResponse(reply, status_code=status)

    return app


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
