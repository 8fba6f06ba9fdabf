"""`ops-pipeline`: exit 0 on success, 1 on a user error (one line naming the problem), 2 on misuse."""

from __future__ import annotations

import sys
from functools import cached_property

import click

from ops_pipeline.errors import OpsError
from ops_pipeline.workspace import Workspace


class Context:
    """Builds the workspace on first use, so `--help` and misuse never touch the disk."""

    @cached_property
    def ws(self) -> Workspace:
        """The workspace from the environment, initialised on first use if it is new or behind the code."""
        ws = Workspace.from_env()
        ws.ensure_ready()
        return ws

    def close(self) -> None:
        if "ws" in self.__dict__:
            self.ws.close()


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ops-pipeline")
@click.pass_context
def cli(click_ctx: click.Context) -> None:
    """Operations platform for payment and voucher businesses."""
    ctx = click_ctx.ensure_object(Context)
    click_ctx.call_on_close(ctx.close)


def main() -> None:
    from ops_pipeline.cli import dev, fundout, jobs, ledger, system, tickets  # noqa: F401  (registers the commands)

    try:
        code = cli.main(standalone_mode=False, prog_name="ops-pipeline")
    except OpsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else 1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
