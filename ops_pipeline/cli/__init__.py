"""`ops-pipeline`: exit 0 on success, 1 on a user error (one line naming the problem), 2 on misuse.

Commands load lazily: `COMMANDS` names each top-level command's module and one-line help, so `--help`
imports no command module and a command imports only its own (and, inside it, what it needs). A new
command module adds its commands here; tests/test_cli_startup.py checks the table against the modules.
"""

from __future__ import annotations

import importlib
import os
import sys
from functools import cached_property
from typing import TYPE_CHECKING

import click
from click.utils import make_default_short_help

from ops_pipeline.errors import OpsError
from ops_pipeline.observability import logs

if TYPE_CHECKING:
    from ops_pipeline.workspace import Workspace

COMMANDS: dict[str, tuple[str, str]] = {
    "agents": ("tickets", "The people tickets are assigned to."),
    "api": ("system", "Serve the REST API."),
    "console": ("console", "Serve the ops console (and the REST API) and print a one-time sign-in link."),
    "console-login": ("console", "Print a one-time link that signs a person in to the ops console."),
    "demo": ("system", "Build a realistic sample world in OPS_HOME and run every pipeline once, end to end."),
    "dev": ("dev", "Dagster webserver + daemon + REST API and console, for local use; Ctrl-C stops all."),
    "disbursements": (
        "disbursements",
        "G2P disbursements: benefit programs, partner keys, envelopes and their status.",
    ),
    "fundout": (
        "fundout",
        "Auto fund-out: per-business schedules that pay out all but a minimum balance; manual cash-out.",
    ),
    "giftcards": (
        "giftcards",
        "The gift-card business: principals and tenants, programs, distributors and customers, vouchers.",
    ),
    "groups": ("tickets", "Teams tickets are routed to (KYC, Risk, ...)."),
    "init": ("system", "Create or upgrade the operational DB schema and the lake tables (idempotent)."),
    "invoices": (
        "giftcards_finance",
        "Gift-card commissions and invoices: compute, issue, credit notes, payments, aging, reminders.",
    ),
    "jobs": ("jobs", "The ops job queue: typed jobs with priority, expiry, approvals, retries and history."),
    "ledger": ("ledger", "The balances ledger: ingest, balances, holds, replay."),
    "merchants": (
        "ledger",
        "Merchant context: which global merchant and fee rule a local operation belongs to.",
    ),
    "notify": (
        "fundout",
        "Notifications: the outbox, delivered by email (OPS_SMTP_URL) and webhook (OPS_WEBHOOK_URL).",
    ),
    "obligations": (
        "giftcards_obligations",
        "What is owed to gift-card principals: compute, list, show, pay, confirm the transfers.",
    ),
    "portals": (
        "giftcards_portal",
        "Principal portal exports: mappings, intake, and their reconciliation against our vouchers.",
    ),
    "recon": (
        "recon",
        "Reconciliations (settlement: CO vs RO; payouts: vs the bank statement), breaks, resolution.",
    ),
    "reports": (
        "reports",
        "Finance reports (HTML and XLSX) per business date and per month, under OPS_HOME/reports.",
    ),
    "sql": (
        "system",
        "DuckDB SQL over the lake views; without QUERY, an interactive shell (statements end with ';').",
    ),
    "statements": ("statements", "Bank statements: load SWIFT MT940 and ISO 20022 camt.053 files."),
    "tickets": ("tickets", "Work for people, assigned fairly to the available agents of a group."),
    "token": ("system", "Mint a signed JWT for local use."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported from their `COMMANDS` module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"ops_pipeline.cli.{COMMANDS[cmd_name][0]}")  # registers it on `cli`
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(map(len, COMMANDS))
        rows = [(name, make_default_short_help(COMMANDS[name][1], limit)) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


class Context:
    """Builds the workspace on first use, so `--help` and misuse never touch the disk."""

    @cached_property
    def ws(self) -> Workspace:
        """The workspace from the environment, initialised on first use if it is new or behind the code."""
        from ops_pipeline.workspace import Workspace

        ws = Workspace.from_env()
        ws.ensure_ready()
        return ws

    def close(self) -> None:
        if "ws" in self.__dict__:
            self.ws.close()


pass_ctx = click.make_pass_decorator(Context)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ops-pipeline")
@click.pass_context
def cli(click_ctx: click.Context) -> None:
    """Operations platform for payment and voucher businesses."""
    ctx = click_ctx.ensure_object(Context)
    click_ctx.call_on_close(ctx.close)


def main() -> None:
    os.umask(0o077)  # what this process and its children (Dagster, uvicorn) create is the owner's only
    logs.configure()
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
