"""The FastAPI application: one workspace per app, correlation ids, bodies checked once (`guard`: 413, 415,
deep JSON), uniform errors, offline docs, metrics (`/metrics`), the routers, the ops console (`/console`).

`ops-pipeline api` serves it with `uvicorn.run("ops_pipeline.api.app:create_app", factory=True)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

from ops_pipeline.api import (
    agents,
    balances,
    docs,
    errors,
    fundout,
    g2p,
    giftcards,
    giftcards_finance,
    giftcards_obligations,
    giftcards_portal,
    guard,
    jobs,
    metrics,
    models,
    operations,
    payouts,
    recon,
    reports,
    statements,
    tickets,
)
from ops_pipeline.api.access import observed
from ops_pipeline.api.auth import TokenVerifier
from ops_pipeline.api.correlation import CorrelationIdMiddleware
from ops_pipeline.api.deps import WorkspaceDep, db_limiter
from ops_pipeline.console import routes as console
from ops_pipeline.db.native import NativeReader, SqliteReader
from ops_pipeline.errors import OpsError
from ops_pipeline.ledger.intake import Intake
from ops_pipeline.observability.timing import freeze_heap
from ops_pipeline.settings import Settings
from ops_pipeline.workspace import Workspace

# Matched in this order, one router after another: the live ledger's routes (the most requests) first.
ROUTERS = (operations.router, balances.router, payouts.router, jobs.router, fundout.router, agents.router,
           tickets.router, statements.router, g2p.router, recon.router, reports.router, giftcards.router,
           giftcards_obligations.router, giftcards_portal.router, giftcards_finance.router)


class Unavailable(OpsError):
    code = "UNAVAILABLE"
    http_status = 503


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ws = Workspace(settings)
        app.state.db_limiter = db_limiter(app.state.ws)
        postgres = app.state.ws.engine.dialect.name == "postgresql"
        app.state.native_reader = (NativeReader if postgres else SqliteReader)(settings.database_url)
        app.state.intake = Intake(app.state.ws)
        freeze_heap()
        lag = asyncio.create_task(metrics.watch_event_loop())
        try:
            yield
        finally:
            lag.cancel()
            app.state.intake.close()
            app.state.fundout_runs.wait(30)
            await app.state.native_reader.close()
            app.state.ws.close()

    app = FastAPI(
        title="ops-pipeline",
        summary="Operations platform for payment businesses: balances ledger, job queue, fund-out, tickets.",
        version="0.1.0",
        description=(
            "Bearer JWT on every route but `/healthz` and the docs. Request bodies are JSON (`Content-Type: "
            f"application/json`, else 415), at most {guard.MAX_BODY_BYTES:,} bytes (else 413), nested "
            f"at most {guard.MAX_DEPTH} levels, without NUL characters (else 400). Errors are "
            "`{error, code, correlationId}`; a 400 names the field and the value."
        ),
        lifespan=lifespan,
        docs_url=None,  # served by `docs`, from the package
        redoc_url=None,
    )
    app.state.verify_token = TokenVerifier(settings)
    app.state.fundout_runs = fundout.Runs()
    app.add_middleware(guard.BodyGuard)
    app.add_middleware(observed)  # the access log; the correlation id and the actor on the span
    app.add_middleware(CorrelationIdMiddleware)
    metrics.install(app)  # added last: the outer one, so it times and counts every answer
    errors.install(app)
    docs.install(app)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["system"],
                      responses=errors.error_responses(503))
    for router in ROUTERS:
        app.include_router(router)
    console.install(app)  # /console: the ops console's pages
    app.openapi = lambda: models.exact_bounds(FastAPI.openapi(app))
    return app


def healthz(ws: WorkspaceDep) -> dict[str, str]:
    """Liveness and readiness: the operational database answers (no auth)."""
    try:
        with ws.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise Unavailable(f"database: unreachable ({type(exc).__name__})") from exc
    return {"status": "ok"}
