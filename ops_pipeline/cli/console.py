"""`ops-pipeline console` and `console-login`: the ops console in the browser, and signing people in to it."""

from __future__ import annotations

import getpass

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.cli.system import serve


def _link(ctx: Context, role: str, sub: str, base: str | None = None) -> str:
    from ops_pipeline.console import sessions

    token = sessions.issue_link(ctx.ws, role, sub, actor=f"cli:{getpass.getuser()}")
    return f"{base or ctx.ws.settings.console_url}/login/{token}"


ROLE = click.option("--role", default="ops", show_default=True, help="ops (acts), finance or analyst (read).")


@cli.command("console-login")
@ROLE
@click.option("--sub", required=True, help="Who signs in: recorded as the actor of what they do.")
@pass_ctx
def console_login(ctx: Context, role: str, sub: str) -> None:
    """Print a one-time link that signs a person in to the ops console."""
    click.echo(_link(ctx, role, sub))


@cli.command("console")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@ROLE
@click.option("--sub", default=getpass.getuser, show_default="your user name", help="Who the link signs in.")
@pass_ctx
def console(ctx: Context, host: str, port: int, role: str, sub: str) -> None:
    """Serve the ops console (and the REST API) and print a one-time sign-in link."""
    ctx.ws.ensure_ready()
    click.echo(f"Console  http://{host}:{port}/console/  (Ctrl-C stops it)")
    click.echo(f"Sign in  {_link(ctx, role, sub, f'http://{host}:{port}/console')}")
    serve(host, port, workers=1)
