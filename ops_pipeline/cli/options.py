"""Options and parsers shared by the command modules: `--format`, `--actor`, and time arguments."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, tzinfo

import click

from ops_pipeline.errors import InvalidInput

FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
ACTOR = click.option("--actor", default=getpass.getuser, show_default="current user", help="Who does this.")


def parse_time(value: str, tz: tzinfo) -> datetime:
    """ISO 8601 date or date-time; without an offset it is local to `tz` (OPS_TIMEZONE)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"timestamp: {value!r} is not an ISO 8601 date or date-time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)).astimezone(UTC)
