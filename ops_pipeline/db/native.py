"""Reads on the API's event loop with nothing in between: Core statements compiled once, run on an asyncpg
pool (PostgreSQL) or one sqlite3 connection (SQLite). For a read of two indexed queries a thread hand-off
costs more than the read, SQLAlchemy's own async layer more still, and on SQLite its Core execution (a
`BEGIN` through the engine's event, result processing) several times the read (docs/BENCHMARKS.md)."""

from __future__ import annotations

import asyncio
import sqlite3
from functools import cache
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite.pysqlite import dialect as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.sql import Select

from ops_pipeline.errors import InvalidInput

DIALECT = asyncpg_dialect()
SQLITE = sqlite_dialect(paramstyle="named")


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
    """asyncpg's arguments for the SQLAlchemy URL the engine uses, so both reach the same server the same
    way: libpq `options=-cname=value` and `application_name` become server settings, `sslmode` is kept,
    `connect_timeout` is the timeout; any other query key is refused rather than silently ignored."""
    parsed = make_url(url)
    query = dict(parsed.query)
    settings: dict[str, str] = {}
    for part in str(query.pop("options", "")).split():
        name, sep, value = part.removeprefix("-c").partition("=")
        if not (part.startswith("-c") and sep):
            raise InvalidInput(f"OPS_DATABASE_URL: options {part!r} is not -cname=value")
        settings[name] = value
    if "application_name" in query:
        settings["application_name"] = str(query.pop("application_name"))
    args: dict[str, Any] = {
        "host": parsed.host,
        "port": parsed.port or 5432,
        "user": parsed.username,
        "password": parsed.password,
        "database": parsed.database,
        "server_settings": settings,
    }
    if "sslmode" in query:
        args["ssl"] = str(query.pop("sslmode"))
    if "connect_timeout" in query:
        args["timeout"] = float(str(query.pop("connect_timeout")))
    if query:
        raise InvalidInput(
            f"OPS_DATABASE_URL: query key {sorted(query)[0]!r} is not supported by the API's "
            "reader; use options, application_name, sslmode or connect_timeout"
        )
    return args


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


@cache
def _compiled_sqlite(statement: Select) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """SQL with :name placeholders, each parameter's bind processor (its column type's, e.g. a UTC datetime
    to SQLite's text), and the values fixed in the statement."""
    compiled = statement.compile(dialect=SQLITE)
    processors = {k: b.type.bind_processor(SQLITE) for k, b in compiled.binds.items()}
    return str(compiled), processors, {k: b.effective_value for k, b in compiled.binds.items()}


class SqliteReader:
    """One sqlite3 connection of the event loop's thread; `fetch` runs its statements in one read
    transaction (one snapshot; WAL readers never wait for the writer). Rows come as sqlite3 gives them:
    result types are not processed, so select numbers and text only."""

    def __init__(self, url: str):
        self.path, self.con = make_url(url).database, None  # connected on first use, once the file exists

    async def close(self) -> None:
        if self.con is not None:
            self.con.close()

    async def fetch(self, statements: list[Select], params: dict[str, Any]) -> list[list[tuple]]:
        """Each statement's rows as tuples, in one transaction."""
        if self.con is None:
            self.con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        out = []
        self.con.execute("BEGIN")
        try:
            for statement in statements:
                sql, processors, fixed = _compiled_sqlite(statement)
                values = {k: (p(v) if p else v) for k, p in processors.items()
                          for v in [params[k] if k in params else fixed[k]]}
                out.append(self.con.execute(sql, values).fetchall())
        finally:
            self.con.execute("COMMIT")
        return out
