"""Models and field types the routers share: request bodies, camelCase answers, bounded ids.

Bounds are declared on the types, so that FastAPI refuses out-of-range values with 400 naming the field
before they reach the database (SQLite raises OverflowError past 64 bits) and OpenAPI shows them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

MAX_ID = 2**63 - 1  # a signed 64-bit integer: every id column, SQLite's and PostgreSQL's bigint alike
OPAQUE = {"attributes", "progress", "attributes_schema", "example"}  # keys inside are the job type's own

Id = Annotated[int, Field(ge=1, le=MAX_ID, description="A positive 64-bit integer id.")]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="A positive 64-bit integer id.")]
Cursor = Annotated[int | None, Query(ge=1, le=MAX_ID, description="nextCursor of the previous page.")]
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_only(value: Any) -> Any:
    # pydantic would read a number (or "0.5") as seconds since the epoch: a typo, never what a client means.
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise ValueError("not an ISO 8601 date-time, e.g. 2026-01-31T09:00:00Z")


Timestamp = Annotated[datetime, BeforeValidator(_iso_only), Field(description="ISO 8601 with an offset.")]


def _iso_day(value: Any) -> Any:
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("not an ISO 8601 date, e.g. 2026-01-31")


Day = Annotated[date, BeforeValidator(_iso_day), Field(description="ISO 8601 date (YYYY-MM-DD).")]


def text(max_length: int, description: str | None = None, **more: Any) -> Any:
    """A pydantic `Field` for a string of 1 to `max_length` characters."""
    return Field(min_length=1, max_length=max_length, description=description, **more)


def choices(values: Iterable[str]) -> dict[str, Any]:
    """`json_schema_extra` documenting the values the domain accepts (and refuses naming the field)."""
    return {"enum": [str(v) for v in values]}


class Body(BaseModel):
    """A request body: camelCase or snake_case keys; an unknown key is refused, never dropped."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              extra="forbid")


class CamelModel(BaseModel):
    """A response model written in camelCase."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)


def camel(value: Any) -> Any:
    """snake_case keys to camelCase, recursively; attributes and their schema keep the type's own keys."""
    if isinstance(value, list):
        return [camel(v) for v in value]
    if isinstance(value, dict):
        return {to_camel(k): (v if k in OPAQUE else camel(v)) for k, v in value.items()}
    return value


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def exact_bounds(schema: Any) -> Any:
    """FastAPI's OpenAPI model keeps numeric bounds as floats: 2**63 - 1 would be written as 2**63, 5 as
    5.0. Write whole bounds as integers again (in place), MAX_ID exactly."""
    if isinstance(schema, list):
        for item in schema:
            exact_bounds(item)
    elif isinstance(schema, dict):
        for key, value in schema.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                schema[key] = MAX_ID if value == float(MAX_ID) else int(value)
            else:
                exact_bounds(value)
    return schema
