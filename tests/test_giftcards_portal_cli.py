"""`ops-pipeline portals ...` as ops run it: a mapping from JSON, an export loaded, its quarantined line,
the run of the date and its breaks, and an error as one line with exit 1."""

import json
from datetime import datetime

from tests.portal_samples import MAPPING, PRINCIPAL, export_csv, seed_portal
from tests.test_tickets_cli import run


def test_portals_from_the_command_line(sqlite_ws, tmp_path):
    ws, home = sqlite_ws, sqlite_ws.home
    dates = seed_portal(ws)
    mall = tmp_path / "mall.json"
    mall.write_text(json.dumps({**MAPPING, "principal_id": "MALL-ORION", "format": "xlsx"}))
    assert json.loads(run(home, "portals", "mapping-create", f"@{mall}"))["format"] == "xlsx"
    listed = run(home, "portals", "mappings", "--format", "csv").splitlines()
    assert listed[1:] == ["MALL-ORION,xlsx,%d/%m/%Y,\",\",INR,active,1", f"{PRINCIPAL},csv,%d/%m/%Y,\",\",INR,active,1"]

    day = datetime.now(ws.settings.tz).date()
    export = tmp_path / f"cafe-{day}.csv"
    export.write_bytes(export_csv(ws, dates))
    assert run(home, "portals", "load", PRINCIPAL, export).startswith(
        f"cafe-{day}.csv: 6 vouchers of {PRINCIPAL} dated {day}, 1 lines quarantined (export ")
    lines = run(home, "portals", "quarantine", "--principal", PRINCIPAL, "--format", "csv").splitlines()
    assert lines[1].startswith(f"{PRINCIPAL},{day},cafe-{day}.csv,8,\"face_value: '5OO,00' (column 'Value')")
    counts = dict(line.split(",") for line in run(home, "portals", "run", "--date", day, "--format",
                                                   "csv").splitlines()[1:])
    assert (counts["matched"], counts["matched_with_difference"], counts["unmatched_external"]) == ("1", "3", "2")
    shown = run(home, "portals", "show", "--date", day)
    assert "6 open breaks" in shown and "voucher GV-T4 is missing from the portal export of P-CAFE-01" in shown
    assert run(home, "portals", "run", "--date", "2026-01-01", "--principal", PRINCIPAL, code=1) == (
        f"error: principal_id: no portal export of '{PRINCIPAL}' dated 2026-01-01\n")
