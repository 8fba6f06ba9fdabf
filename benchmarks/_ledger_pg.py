"""The obvious alternative for the ledger benchmark: the same log entries in a PostgreSQL table.

The table holds the four columns the balances need (merchant_id, currency, source, amount_minor), which
is the most favourable shape for PostgreSQL, with an index on (merchant_id, currency). It is loaded once per
data build (COPY from a CSV that DuckDB writes from the log's Parquet files) and reused while the build
is unchanged.
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb
import psycopg2

TABLE = "ledger_entries"
# The same sums as ops_pipeline.ledger.live.fold_sql, in PostgreSQL.
QUERY = f"""
    SELECT merchant_id, currency,
           coalesce(sum(amount_minor) FILTER (WHERE source <> 'RO'), 0) AS confirmed_minor,
           coalesce(sum(amount_minor) FILTER (WHERE source <> 'CO'), 0) AS settled_minor,
           count(*) AS entries
    FROM {TABLE} GROUP BY merchant_id, currency
"""
SETTINGS = ("server_version", "shared_buffers", "work_mem", "max_parallel_workers_per_gather",
            "effective_cache_size", "jit")


@contextmanager
def _cursor(dsn: str, dbname: str):
    """An autocommit cursor (CREATE DATABASE and VACUUM run outside transactions)."""
    conn = psycopg2.connect(f"{dsn} dbname={dbname}")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def ensure_database(dsn: str, dbname: str) -> None:
    with _cursor(dsn, "postgres") as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{dbname}"')


def loaded_build(dsn: str, dbname: str) -> str | None:
    """The data build id the table was loaded from, or None."""
    with _cursor(dsn, dbname) as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL)")
        cur.execute("SELECT value FROM bench_meta WHERE key = 'build'")
        row = cur.fetchone()
        return row[0] if row else None


def load(dsn: str, dbname: str, files: list[str], build_id: str, scratch: Path) -> dict:
    """(Re)create the table from the log's Parquet files, index it, VACUUM ANALYZE; returns timings."""
    csv = scratch / "entries.csv"
    started = time.perf_counter()
    con = duckdb.connect()
    listing = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    con.execute(f"""COPY (SELECT merchant_id, currency, source, amount_minor FROM read_parquet({listing}))
                    TO '{csv}' (FORMAT csv, HEADER false)""")
    con.close()
    exported = time.perf_counter()
    with _cursor(dsn, dbname) as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute("DELETE FROM bench_meta WHERE key = 'build'")
        cur.execute(f"CREATE TABLE {TABLE} (merchant_id text NOT NULL, currency text NOT NULL, "
                    "source text NOT NULL, amount_minor bigint NOT NULL)")
        with open(csv) as f:
            cur.copy_expert(f"COPY {TABLE} FROM STDIN (FORMAT csv)", f)
        copied = time.perf_counter()
        cur.execute(f"CREATE INDEX {TABLE}_merchant_currency ON {TABLE} (merchant_id, currency)")
        indexed = time.perf_counter()
        cur.execute(f"VACUUM ANALYZE {TABLE}")
        cur.execute("INSERT INTO bench_meta VALUES ('build', %s)", (build_id,))
        done = time.perf_counter()
    csv.unlink()
    return {"export_csv_s": round(exported - started, 1), "copy_s": round(copied - exported, 1),
            "index_s": round(indexed - copied, 1), "vacuum_analyze_s": round(done - indexed, 1)}


def measure(dsn: str, dbname: str, repeat: int) -> dict:
    """Warm-up once, then time QUERY `repeat` times; also the plan, sizes, settings and totals."""
    with _cursor(dsn, dbname) as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
        cur.execute(f"SELECT count(*), pg_total_relation_size('{TABLE}'), pg_relation_size('{TABLE}') "
                    f"FROM {TABLE}")
        rows, total_bytes, heap_bytes = cur.fetchone()
        cur.execute("EXPLAIN " + QUERY)
        plan = [r[0] for r in cur.fetchall()]
        cur.execute(QUERY)  # warm-up: table in the OS page cache
        cur.fetchall()
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            cur.execute(QUERY)
            result = cur.fetchall()
            times.append(time.perf_counter() - started)
        settings = {}
        for name in SETTINGS:
            cur.execute(f"SHOW {name}")
            settings[name] = cur.fetchone()[0]
        backend_peak_kib = _peak_rss_kib(pid)
    return {
        "rows": rows, "table_bytes": heap_bytes, "table_and_index_bytes": total_bytes, "plan": plan,
        "seconds": [round(t, 3) for t in times], "median_s": round(statistics.median(times), 3),
        "best_s": round(min(times), 3), "balances": len(result),
        "totals": {name: sum(int(r[i]) for r in result)
                   for i, name in ((2, "confirmed_minor"), (3, "settled_minor"), (4, "entries"))},
        "settings": settings, "backend_peak_rss_kib": backend_peak_kib,
    }


def _peak_rss_kib(pid: int) -> int | None:
    """VmHWM of the server backend that ran the query (parallel workers are separate processes)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None
