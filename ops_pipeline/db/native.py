"""PostgreSQL reads on the API's event loop: Core statements compiled once for asyncpg and run on an
asyncpg pool, with nothing in between. For a read of two indexed queries a thread hand-off costs more
than the read, and SQLAlchemy's own async layer costs more still (measured: docs/BENCHMARKS.md)."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.sql import Select

DIALECT = asyncpg_dialect()


@cache
def _compiled(statement: Select) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """SQL with $n placeholders, the parameter names in order, and the values fixed in the statement."""
    compiled = statement.compile(dialect=DIALECT)
    return (
        str(compiled),
        tuple(compiled.positiontup),
        {k: b.effective_value for k, b in compiled.binds.items()},
    )


def connect_args(url: str) -> dict[str, Any]:
    """asyncpg's arguments for a SQLAlchemy URL; libpq `options=-cname=value` become server settings."""
    parsed = make_url(url)
    settings = {}
    for part in str(parsed.query.get("options") or "").split():
        name, sep, value = part.removeprefix("-c").partition("=")
        if part.startswith("-c") and sep:
            settings[name] = value
    return {
        "host": parsed.host,
        "port": parsed.port or 5432,
        "user": parsed.username,
        "password": parsed.password,
        "database": parsed.database,
        "server_settings": settings,
    }


class NativeReader:
    """A small asyncpg pool, made on first use (the app starts even while the database is down); `close`
    in the app's lifespan."""

    def __init__(self, url: str, size: int = 8):
        self.args, self.size, self.pool = connect_args(url), size, None
        self._made = asyncio.Lock()

    async def _pool(self) -> asyncpg.Pool:
        async with self._made:
            if self.pool is None:
                self.pool = await asyncpg.create_pool(min_size=1, max_size=self.size, **self.args)
        return self.pool

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def fetch(self, statements: list[Select], params: dict[str, Any]) -> list[list[tuple]]:
        """Each statement's rows as tuples, on one connection."""
        out = []
        async with (await self._pool()).acquire() as conn:
            for statement in statements:
                sql, names, fixed = _compiled(statement)
                values = [params[n] if n in params else fixed[n] for n in names]
                out.append([tuple(r) for r in await conn.fetch(sql, *values)])
        return out
