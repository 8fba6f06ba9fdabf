"""A killed ingest leaves the ledger as before or after, never half; concurrent ingests never double count."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from ops_pipeline import analytics
from ops_pipeline.lake.tables import INPUT_COLUMNS
from ops_pipeline.ledger import balances, merchants
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings
from tests.factories import write_merchants

CLI = str(Path(sys.executable).with_name("ops-pipeline"))
N = 80_000


def big_file(path: Path, n: int = N) -> Path:
    """n EUR captures of 1.00..n/100 for merchant M1 (fee 2.9% + 0.30)."""
    ids = pl.int_range(0, n, eager=True)
    pl.DataFrame(
        {
            "falcon_operation_id": "op-" + ids.cast(pl.String),
            "external_reference": "ref-" + ids.cast(pl.String),
            "type": ["capture"] * n,
            "amount": (1 + ids % 997).cast(pl.String) + ".00",
            "currency": ["EUR"] * n,
            "operation_date": ["2026-11-01T10:00:00Z"] * n,
            "psp_id": ["psp1"] * n,
            "local_merchant_id": ["lm1"] * n,
            "shop_id": ["s1"] * n,
        }
    ).select(INPUT_COLUMNS).write_parquet(path)
    return path


def expected_minor(n: int = N) -> int:
    amounts = [(1 + i % 997) * 100 for i in range(n)]
    return sum(a - ((a * 2_900_000 + 50_000_000) // 100_000_000 + 30) for a in amounts)


def env_for(home: Path, db_url: str) -> dict:
    return {**os.environ, "OPS_HOME": str(home), "OPS_DATABASE_URL": db_url}


def workspace(home: Path, db_url: str, tmp_path: Path) -> Workspace:
    ws = Workspace(make_settings(home, db_url))
    ws.init()
    merchants.load(ws, write_merchants(tmp_path / "m.csv"))
    return ws


def log_count(ws) -> int:
    return analytics.connect(ws).sql("SELECT count(*) FROM balance_operations").fetchall()[0][0]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_killed_ingest_is_all_or_nothing_and_the_next_run_completes_it(tmp_path, backend, request):
    f = big_file(tmp_path / "big.parquet")

    def fresh(name: str) -> tuple[Path, str, Workspace]:
        home = tmp_path / name
        url = (
            f"sqlite:///{home / 'ops.db'}" if backend == "sqlite" else request.getfixturevalue("pg_schemas")()
        )
        return home, url, workspace(home, url, tmp_path)

    home, url, ws = fresh("full")
    started = time.perf_counter()
    subprocess.run(
        [CLI, "ledger", "ingest", str(f), "--kind", "confirmed"], env=env_for(home, url), check=True
    )
    full = time.perf_counter() - started
    assert log_count(ws) == 2 * N
    ws.close()

    outcomes = []
    for fraction in (0.3, 0.65, 0.9):
        home, url, ws = fresh(f"kill-{fraction}")
        proc = subprocess.Popen(
            [CLI, "ledger", "ingest", str(f), "--kind", "confirmed"],
            env=env_for(home, url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(full * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        count = log_count(ws)
        assert count in (0, 2 * N), f"half-written ledger after a kill at {fraction:.0%}: {count} entries"
        outcomes.append(count)
        subprocess.run(
            [CLI, "ledger", "ingest", str(f), "--kind", "confirmed"], env=env_for(home, url), check=True
        )
        assert log_count(ws) == 2 * N
        [b] = balances.get_balances(ws, "M1")
        assert b.confirmed_minor == expected_minor()
        assert balances.rebuild(ws).differences == []
        ws.close()
    assert 0 in outcomes, outcomes  # at least one kill landed before the commit point


def test_concurrent_ingests_of_the_same_file_count_once(tmp_path, db_url):
    f = big_file(tmp_path / "f.parquet", 20_000)
    home = tmp_path / "home"
    ws = workspace(home, db_url, tmp_path)
    procs = [
        subprocess.Popen(
            [CLI, "ledger", "ingest", str(f), "--kind", "confirmed"],
            env=env_for(home, db_url),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate()[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert sorted(" 20000 ingested" in o for o in outputs) == [False, False, True], outputs
    assert log_count(ws) == 40_000
    [b] = balances.get_balances(ws, "M1")
    assert b.confirmed_minor == expected_minor(20_000)
    ws.close()
