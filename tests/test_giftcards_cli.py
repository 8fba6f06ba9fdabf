"""`ops-pipeline giftcards ...` as ops run it: records from JSON files, masked output, a file attached under
OPS_HOME, assignments with dates, vouchers moved through their statuses, the analyst views, and errors as
one line with exit 1."""

import json

from tests.giftcard_samples import DISTRIBUTOR, MALL, PROGRAM, TENANT, VPA
from tests.test_tickets_cli import run


def test_giftcard_records_from_the_command_line(tmp_path):
    home = tmp_path / "home"
    for kind, record in (("principal", MALL), ("principal", TENANT), ("program", PROGRAM), ("party", DISTRIBUTOR)):
        path = tmp_path / f"{kind}.json"
        path.write_text(json.dumps(record))
        run(home, "giftcards", "create", kind, f"@{path}", "--actor", "asha")
    tenant = json.loads(run(home, "giftcards", "show", "principal", "P-CAFE-01"))
    assert tenant["upi_vpas"] == ["be***@okhdfc", "be***@ybl"] and VPA not in json.dumps(tenant)
    listed = run(home, "giftcards", "list", "principal", "--kind", "tenant", "--format", "csv")
    assert listed.splitlines()[1].startswith("P-CAFE-01,tenant,MALL-ORION,Bean There Cafe,active,1,")
    changed = json.loads(run(home, "giftcards", "update", "principal", "P-CAFE-01", '{"unit": "G-14"}',
                             "--expected-version", "1"))
    assert changed["unit"] == "G-14" and changed["version"] == 2
    assert run(home, "giftcards", "update", "principal", "P-CAFE-01", '{"unit": "G-15"}',
               "--expected-version", "1", code=1) == (
        "error: version: principal 'P-CAFE-01' is at version 2, not 1\n")
    flyer = tmp_path / "flyer.pdf"
    flyer.write_bytes(b"%PDF-1.4 festive")
    out = run(home, "giftcards", "attach", "program", "GC-ORION-FESTIVE", flyer, "--field", "communications",
              "--title", "Festive flyer")
    stored = out.strip().split(" + ")[1]
    assert (home / stored).read_bytes() == b"%PDF-1.4 festive"
    assert run(home, "giftcards", "restriction", "GC-ORION-FESTIVE", "pushed") == (
        "program GC-ORION-FESTIVE: restriction pushed\n")

    assert run(home, "giftcards", "assign", "D-GIFTLY", "GC-ORION-FESTIVE", "--starts-on", "2026-11-01",
               "--commission-percent", "3") == "assignment 1: D-GIFTLY sells GC-ORION-FESTIVE from 2026-11-01\n"
    assert run(home, "giftcards", "unassign", "1", "--ends-on", "2026-11-30") == (
        "assignment 1: unassigned, ends on 2026-11-30\n")
    assert "is unassigned" in run(home, "giftcards", "unassign", "1", code=1)

    issued = run(home, "giftcards", "issue", "GC-ORION-FESTIVE", "--face-value", "500", "--price-paid", "480",
                 "--count", "2", "--holder", "D-GIFTLY", "--format", "json")
    first = json.loads(issued)[0]["voucher_id"]
    assert json.loads(run(home, "giftcards", "voucher", first, "redeemed"))["status"] == "redeemed"
    assert run(home, "giftcards", "voucher", first, "cancelled", code=1) == (
        f"error: status: voucher '{first}' is redeemed; it cannot become cancelled\n")
    assert "face_value: '5x' is not a non-negative decimal number" in run(
        home, "giftcards", "issue", "GC-ORION-FESTIVE", "--face-value", "5x", "--price-paid", "1", code=1)
    assert run(home, "giftcards", "create", "party", "{bad", code=1).startswith("error: party: not valid JSON")
    assert run(home, "sql", "SELECT status, count(*) AS n FROM vouchers GROUP BY status ORDER BY status",
               "--format", "csv") == "status,n\nissued,1\nredeemed,1\n"
