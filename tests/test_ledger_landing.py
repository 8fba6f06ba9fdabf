"""One ingest path for files: landing files are archived once ingested, a repeated request for an archived
file is skipped, a file elsewhere stays where it is; the CLI and Dagster both take this path."""

import os
import subprocess
import sys
from pathlib import Path

from ops_pipeline.audit import history
from ops_pipeline.ledger import adjustments, balances, landing
from tests.factories import op, write_ops

CLI = str(Path(sys.executable).with_name("ops-pipeline"))


def test_landing_files_are_ingested_in_order_and_archived_and_a_repeat_is_skipped(sqlite_ws, tmp_path):
    co = write_ops(sqlite_ws.settings.landing_dir / "confirmed" / "co.csv", [op("o1", "100.00")])
    ro = write_ops(sqlite_ws.settings.landing_dir / "reconciled" / "ro.csv", [op("o1", "100.00")])
    outside = write_ops(tmp_path / "elsewhere.csv", [op("o2", "5.00")])

    first = landing.ingest_files(sqlite_ws)
    assert [(o.path.name, o.result.ingested) for o in first] == [("co.csv", 1), ("ro.csv", 1)]
    assert [o.archived_as.relative_to(sqlite_ws.settings.landing_dir).as_posix() for o in first] == [
        "archive/confirmed/co.csv", "archive/reconciled/ro.csv"]
    assert not co.exists() and not ro.exists()

    again = landing.ingest_files(sqlite_ws, [(co, "confirmed"), (outside, "confirmed")])
    assert again[0].skipped == "already ingested and archived" and again[0].result is None
    assert (again[1].result.ingested, again[1].archived_as) == (1, None)
    assert outside.exists()
    [m1] = balances.get_balances(sqlite_ws, "M1")
    assert m1.confirmed_minor == 10000 - 320 + 500 - 45


def test_cli_ingest_without_files_takes_the_landing_folders(sqlite_ws):
    write_ops(sqlite_ws.settings.landing_dir / "confirmed" / "co.csv", [op("o1", "100.00")])
    env = {**os.environ, "OPS_HOME": str(sqlite_ws.home)}
    env.pop("OPS_DATABASE_URL", None)
    done = subprocess.run([CLI, "ledger", "ingest"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "co.csv: 1 rows, 1 ingested (2 entries), 0 duplicate, 0 quarantined (0 new); archived as" in done.stdout
    missing_kind = subprocess.run([CLI, "ledger", "ingest", "x.csv"], env=env, capture_output=True, text=True)
    assert missing_kind.returncode == 2 and "--kind is required with FILES" in missing_kind.stderr


def test_an_adjustment_is_one_entry_audited_with_who_and_why_and_idempotent(ws):
    a = adjustments.adjust(ws, "M1", "EUR", adjustments.signed_minor("-12.50", "EUR"), "TICKET-7",
                           actor="alice", entry_id="adj-1")
    again = adjustments.adjust(ws, "M1", "EUR", -1250, "TICKET-7", actor="alice", entry_id="adj-1")
    assert (a.posted, again.posted, a.entry.amount_minor) == (True, False, -1250)
    [b] = balances.get_balances(ws, "M1")
    assert (b.confirmed_minor, b.settled_minor) == (-1250, -1250)
    with ws.engine.connect() as conn:
        [record] = history(conn, "ledger_entry", "adj-1")
    assert (record["actor"], record["action"], record["reason"]) == ("alice", "adjusted", "TICKET-7")
