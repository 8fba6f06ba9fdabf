"""`ops-pipeline init | demo | sql | api | token`."""

from __future__ import annotations

import sys

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.options import FORMAT
from ops_pipeline.cli.output import emit


@cli.command("init")
@pass_ctx
def init(ctx: Context) -> None:
    """Create or upgrade the operational DB schema and the lake tables (idempotent)."""
    ctx.ws.init()
    database = ctx.ws.engine.url.render_as_string(hide_password=True)
    click.echo(f"workspace ready: database {database}, lake {ctx.ws.settings.lake_uri}")


@cli.command("demo")
@click.option("--operations", default=120_000, show_default=True, help="How many operations to generate.")
@click.option("--merchants", "merchant_count", default=300, show_default=True)
@click.option("--seed", default=7, show_default=True)
@pass_ctx
def demo(ctx: Context, operations: int, merchant_count: int, seed: int) -> None:
    """Build a realistic sample world in OPS_HOME and run every pipeline once, end to end."""
    from ops_pipeline.demo.run import run_demo

    run_demo(ctx.ws, operations=operations, merchants=merchant_count, seed=seed, echo=click.echo)


@cli.command("sql")
@click.argument("query", required=False)
@FORMAT
@pass_ctx
def sql(ctx: Context, query: str | None, fmt: str) -> None:
    """DuckDB SQL over the lake views; without QUERY, an interactive shell (statements end with ';')."""
    import duckdb

    from ops_pipeline import analytics
    from ops_pipeline.errors import InvalidInput

    con = analytics.connect(ctx.ws, operational=True)

    def run(statement: str) -> None:
        try:  # DuckDB raises some errors only while fetching
            rel = con.sql(statement)
            rows = rel.fetchall() if rel is not None else None
        except duckdb.Error as exc:
            raise InvalidInput(f"query: {str(exc).splitlines()[0]}") from None
        if rel is not None:
            emit(rel.columns, rows, fmt)

    if query:
        run(query)
        return
    click.echo(
        "ops-pipeline sql: views " + ", ".join(analytics.view_names()) + ". End statements with ';', "
        "quit with Ctrl-D.",
        err=True,
    )
    buffer = ""
    while True:
        try:
            line = input("sql> " if not buffer else "...> ") if sys.stdin.isatty() else sys.stdin.readline()
        except EOFError:
            break
        if not sys.stdin.isatty() and line == "":
            break
        buffer += line + "\n"
        if buffer.strip().endswith(";"):
            try:
                run(buffer)
            except Exception as exc:  # the shell keeps going after a bad statement
                click.echo(f"error: {exc}", err=True)
            buffer = ""


@cli.command("api")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=1, show_default=True)
def api(host: str, port: int, workers: int) -> None:
    """Serve the REST API."""
    serve(host, port, workers)


def serve(host: str, port: int, workers: int) -> None:
    """The API process (REST API and console) under uvicorn, until interrupted."""
    import uvicorn

    from ops_pipeline.observability import logs

    uvicorn.run(
        "ops_pipeline.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        log_config=logs.uvicorn_config(),  # uvicorn's lines in our format, in every worker process
        access_log=False,  # ours (`api.access`) has the route, the correlation id and the actor
    )


@cli.command("token")
@click.option("--role", required=True)
@click.option("--sub", required=True, help="Subject: a person, a service, or the businessId for a merchant.")
@click.option("--ttl", default=3600, show_default=True, help="Seconds of validity.")
@pass_ctx
def token(ctx: Context, role: str, sub: str, ttl: int) -> None:
    """Mint a signed JWT for local use."""
    from ops_pipeline.auth import mint_token

    click.echo(mint_token(ctx.ws.settings, role, sub, ttl))
