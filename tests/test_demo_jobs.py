"""The demo's job-queue chapter ends the same way every run: its dependent jobs wait for their prerequisites
instead of racing them between the two worker threads (they used to fail 0-2 of 6 from run to run)."""

import pytest

from ops_pipeline.demo.jobs import ORDER, run_jobs
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings

EXPECTED = [(name, "Created" if name == "manual" else "Completed") for name in ORDER]


def outcomes(home, database_url=None) -> tuple[list[str], list[tuple[str, str]]]:
    lines: list[str] = []
    ws = Workspace(make_settings(home, database_url))
    try:
        ws.init()
        run_jobs(ws, lines.append)
    finally:
        ws.close()
    jobs = [line.split()[2:] for line in lines if line.startswith("  job ") and "approved" not in line]
    return lines, [(name, " ".join(state)) for name, *state in jobs]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_the_demo_jobs_give_the_same_outcomes_every_run(tmp_path, pg_schemas, database):
    for run in range(3):
        lines, jobs = outcomes(tmp_path / f"run{run}", pg_schemas() if database == "postgres" else None)
        assert jobs == EXPECTED, lines
        assert "  workers: 6 claimed, 6 completed, 0 failed" in lines
