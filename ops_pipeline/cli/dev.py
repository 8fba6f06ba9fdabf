"""`ops-pipeline dev`: the Dagster webserver and daemon (`dagster dev`) and the REST API with the ops console,
together."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from ops_pipeline.cli import Context, cli, pass_ctx
from ops_pipeline.console import sessions
from ops_pipeline.settings import private_dir

REPO = Path(__file__).resolve().parents[2]
STOP_TIMEOUT = 30


def install_instance_yaml(dagster_home: Path) -> Path:
    """Copy the repository's dagster.yaml into DAGSTER_HOME (where Dagster reads it) unless already there."""
    private_dir(dagster_home)
    target = dagster_home / "dagster.yaml"
    source = REPO / "dagster.yaml"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
    return target


def _stop(procs: dict[str, subprocess.Popen]) -> None:
    """SIGINT each child (both shut down cleanly on it), then kill what is still running after a while."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@cli.command("dev")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface of the UI and the API.")
@click.option("--port", default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--api-port", default=8000, show_default=True, help="Port of the REST API.")
@pass_ctx
def dev(ctx: Context, host: str, port: int, api_port: int) -> None:
    """Dagster webserver + daemon + REST API and console, for local use; Ctrl-C stops all."""
    ctx.ws.init()
    settings = ctx.ws.settings
    dagster_home = settings.dagster_home
    install_instance_yaml(dagster_home)
    lake = settings.lake_uri if "://" in settings.lake_uri else str(Path(settings.lake_uri).resolve())
    # Absolute paths: the children run from DAGSTER_HOME and the repository.
    env = {**os.environ, "OPS_HOME": str(settings.home), "OPS_LAKE_URI": lake,
           "DAGSTER_HOME": str(dagster_home), "OPS_DAGSTER_URL": f"http://{host}:{port}",
           "OPS_CONSOLE_URL": f"http://{host}:{api_port}/console"}
    commands = {
        "dagster": [sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml"),
                    "--host", host, "--port", str(port)],
        "api": [sys.executable, "-c", "from ops_pipeline.cli import main; main()", "api",
                "--host", host, "--port", str(api_port)],
    }
    # Ctrl-C and SIGTERM reach only this process; it forwards one SIGINT to each child, which then
    # stops its own children (webserver, daemon, code server) in order.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands.items():
            procs[name] = subprocess.Popen(command, env=env, cwd=dagster_home, start_new_session=True)
        click.echo(f"Dagster UI  http://{host}:{port}  (DAGSTER_HOME {dagster_home})")
        click.echo(f"REST API    http://{host}:{api_port}/docs")
        link = sessions.issue_link(ctx.ws, "ops", getpass.getuser(), actor="cli:dev")
        click.echo(f"Console     http://{host}:{api_port}/console/  (sign in: "
                   f"http://{host}:{api_port}/console/login/{link})")
        click.echo("Ctrl-C stops both.")
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise click.ClickException(f"{name} stopped unexpectedly (exit code {proc.returncode})")
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("stopping...", err=True)
    finally:
        _stop(procs)
