"""The PostgreSQL side of the job-queue benchmark: its databases, and pgqueuer's own benchmark
(`tools/benchmark.py` from its sdist) as the yardstick for our queue.

The sdist of the installed pgqueuer version is fetched once with `pip download` into `benchmarks/.data/`
(or taken from `--pgqueuer-sdist DIR`); its database is made afresh and `pgq install` creates the schema
(default durability: logged tables, as ours). The benchmark connects through the libpq environment
variables (PGHOST, PGPORT, PGUSER, PGDATABASE), as its `_get_conninfo` expects.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

import psycopg2

DATA = Path(__file__).resolve().parent / ".data"


def tools_benchmark(sdist: Path | None) -> Path:
    """`tools/benchmark.py` of the installed pgqueuer's sdist (downloaded and unpacked on first use)."""
    release = f"pgqueuer-{version('pgqueuer')}"
    root = sdist or DATA / release
    script = root / "tools" / "benchmark.py"
    if script.exists():
        return script
    if sdist is not None:
        raise SystemExit(f"{script} does not exist")
    DATA.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", f"pgqueuer=={version('pgqueuer')}", "--no-deps",
                    "--no-binary", ":all:", "-d", str(DATA)], check=True, capture_output=True)
    with tarfile.open(DATA / f"{release}.tar.gz") as tar:
        tar.extractall(DATA, filter="data")
    return script


def libpq_env(host: str, port: int, user: str, database: str) -> dict[str, str]:
    return {"PGHOST": host, "PGPORT": str(port), "PGUSER": user, "PGDATABASE": database}


def _admin(host: str, port: int, user: str, *statements: str) -> list:
    """Run statements on the `postgres` database in autocommit; the first row of the last one."""
    conn = psycopg2.connect(host=host, port=port, user=user, dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            return cur.fetchone() if cur.description else None
    finally:
        conn.close()


def ensure_database(host: str, port: int, user: str, database: str) -> None:
    if not _admin(host, port, user, f"SELECT 1 FROM pg_database WHERE datname = '{database}'"):
        _admin(host, port, user, f'CREATE DATABASE "{database}"')


def fresh_database(host: str, port: int, user: str, database: str) -> None:
    """Drop and create `database` (the benchmark's own)."""
    _admin(host, port, user, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
           f'CREATE DATABASE "{database}"')


def checkpoint(host: str, port: int, user: str) -> None:
    _admin(host, port, user, "CHECKPOINT")


def server_version(host: str, port: int, user: str) -> str:
    return _admin(host, port, user, "SHOW server_version")[0]


def install(env: dict[str, str]) -> None:
    pgq = Path(sys.executable).with_name("pgq")
    subprocess.run([str(pgq), "install"], env=env, check=True, capture_output=True)


def drain_command(script: Path, jobs: int, dequeue: int, batch: int, output: Path) -> list[str]:
    return [sys.executable, str(script), "--strategy", "drain", "--jobs", str(jobs), "--dequeue",
            str(dequeue), "--dequeue-batch-size", str(batch), "--output-json", str(output)]


def read_result(output: Path) -> dict:
    """Its BenchmarkResult JSON: rate (jobs/s), elapsed, steps (jobs)."""
    return json.loads(output.read_text())
