"""Cross-process writer locks: a PostgreSQL advisory lock in production, a file lock when embedded."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ops_pipeline.settings import PRIVATE_FILE, private_dir

if TYPE_CHECKING:
    from sqlalchemy import Engine


@contextmanager
def writer_lock(engine: Engine, name: str, lock_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock named `name` across processes; released even if the process dies."""
    from ops_pipeline.observability.timing import lock_wait  # here: commands that only read skip metrics

    if engine.dialect.name == "postgresql":
        from sqlalchemy import text

        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with engine.connect() as conn:
            with lock_wait(name):
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    fd = os.open(private_dir(lock_dir) / f"{name}.lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        with lock_wait(name):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
