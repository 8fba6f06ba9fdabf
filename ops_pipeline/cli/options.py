"""Options and parsers shared by the command modules: `--format`, `--actor`, and time arguments."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path

import click

from ops_pipeline.errors import InvalidInput

FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
ACTOR = click.option("--actor", default=getpass.getuser, show_default="current user", help="Who does this.")


def json_object(value: str, field: str) -> dict:
    """JSON text, or @FILE holding JSON, that must be an object; InvalidInput naming `field` otherwise."""
    try:
        text = Path(value[1:]).read_text() if value.startswith("@") else value
        parsed = json.loads(text)
    except OSError as exc:
        raise InvalidInput(f"{field}: cannot read {value[1:]!r} ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{field}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise InvalidInput(f"{field}: JSON nested too deeply") from None
    if not isinstance(parsed, dict):
        raise InvalidInput(f"{field}: must be a JSON object")
    return parsed


def parse_time(value: str, tz: tzinfo) -> datetime:
    """ISO 8601 date or date-time; without an offset it is local to `tz` (OPS_TIMEZONE)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"timestamp: {value!r} is not an ISO 8601 date or date-time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)).astimezone(UTC)


def parse_date(value: str, field: str = "date") -> date:
    """An ISO date (YYYY-MM-DD); InvalidInput naming `field` otherwise."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field}: {value!r} is not an ISO date (YYYY-MM-DD)") from None
