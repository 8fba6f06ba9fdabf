"""The console's gift-card pages on SQLite and PostgreSQL: a mall with its tenant (VPAs and bank details
masked), a program's restriction state and rules, a distributor's wallet from the ledger and its assignments
(assigned and unassigned by ops through CSRF forms, audited with the console user; refused to analysts),
vouchers filtered and paged by id, one voucher with its events and audit trail."""

import re

from ops_pipeline.console.pages import giftcards as page
from ops_pipeline.giftcards import kinds, vouchers
from ops_pipeline.ledger import adjustments
from tests import giftcard_samples as samples
from tests.console import console_client, csrf, next_link, submit, text_of

PROGRAM, DISTRIBUTOR = samples.PROGRAM["program_id"], samples.DISTRIBUTOR["party_id"]


def listed(html: str, what: str) -> list[str]:
    return re.findall(rf'<tr id="{what}-([^"]+)">', html)


def test_records_wallet_assignments_and_audit(ws):
    samples.seed(ws)
    kinds.set_restriction(ws, PROGRAM, "failed", "ops:asha", "bank timeout")
    adjustments.adjust(ws, DISTRIBUTOR, "INR", 123_450, "UTR-1", actor="ops:asha")
    with console_client(ws, "analyst", "ann") as client:
        mall = client.get("/console/giftcards/principals/MALL-ORION")
        assert mall.status_code == 200 and listed(mall.text, "tenant") == ["P-CAFE-01"]
        tenant = text_of(client.get("/console/giftcards/principals/P-CAFE-01").text)
        assert samples.VPA not in tenant and samples.ACCOUNT not in tenant and "asha@beanthere" not in tenant
        assert "commission 2.5% · discount 1%" in tenant and "create ops:asha" in tenant
        assert listed(client.get("/console/giftcards/principals?kind=tenant").text, "principal") == ["P-CAFE-01"]
        program = text_of(client.get(f"/console/giftcards/programs/{PROGRAM}").text)
        assert "failed · bank timeout" in program and "percent 3%" in program
        assert "restriction ops:asha bank timeout restriction_state: pending → failed" in program
        party = client.get(f"/console/giftcards/parties/{DISTRIBUTOR}")
        assert "1234.50 INR available" in text_of(party.text)
        assert 'id="assign"' not in party.text  # analysts read only
        refused = submit(client, f"/console/giftcards/parties/{DISTRIBUTOR}/assign", program_id=PROGRAM,
                         starts_on="2026-01-01")
        assert refused.status_code == 403
        assert client.get("/console/giftcards/parties/NOPE").status_code == 404

    with console_client(ws, "ops", "olga") as client:
        token = csrf(client, f"/console/giftcards/parties/{DISTRIBUTOR}")
        assert submit(client, f"/console/giftcards/parties/{DISTRIBUTOR}/assign", token="", program_id=PROGRAM,
                      starts_on="2026-01-01").status_code == 403  # no CSRF token
        bad = submit(client, f"/console/giftcards/parties/{DISTRIBUTOR}/assign", token=token, program_id=PROGRAM,
                     starts_on="2026-01-01", discount_percent="120")
        assert bad.status_code == 400 and "assignment.discount_percent" in bad.text
        r = submit(client, f"/console/giftcards/parties/{DISTRIBUTOR}/assign", token=token, program_id=PROGRAM,
                   starts_on="2026-01-01", discount_percent="2.5", agreement_reference="AGR-7")
        assert r.status_code == 303 and r.headers["location"] == f"/console/giftcards/parties/{DISTRIBUTOR}"
        shown = client.get(r.headers["location"])
        [assignment_id] = listed(shown.text, "assignment")
        assert f"Assignment {assignment_id}: {DISTRIBUTOR} sells {PROGRAM} from 2026-01-01." in text_of(shown.text)
        overlap = submit(client, f"/console/giftcards/parties/{DISTRIBUTOR}/assign", token=token,
                         program_id=PROGRAM, starts_on="2026-02-01")
        assert overlap.status_code == 409 and "starts_on" in overlap.text
        bad_day = submit(client, f"/console/giftcards/assignments/{assignment_id}/unassign", token=token,
                         ends_on="31/03/2026", reason="x")
        assert bad_day.status_code == 400 and "ends_on: &#39;31/03/2026&#39; is not a date" in bad_day.text
        r = submit(client, f"/console/giftcards/assignments/{assignment_id}/unassign", token=token,
                   ends_on="2026-03-31", reason="agreement ended")
        assert r.status_code == 303
        shown = client.get(r.headers["location"]).text
        after = text_of(shown)
        assert f"Assignment {assignment_id} ({PROGRAM}) ends on 2026-03-31." in after
        assert "2026-01-01 2026-03-31 0% 2.5% AGR-7 unassigned" in after and "/unassign" not in shown
        assert f"assignment {assignment_id} unassign olga agreement ended status: active → unassigned" in after
        assert f"assignment {assignment_id} assign olga" in after


def test_vouchers_filtered_paged_and_one_with_its_events(ws, monkeypatch):
    samples.seed(ws)
    made = vouchers.issue(ws, PROGRAM, "500.00", 5, "487.50", "ops:asha", DISTRIBUTOR, distributed=True)
    made += vouchers.issue(ws, PROGRAM, "1000.00", 2, "1000", "ops:asha")
    ids = sorted(v["voucher_id"] for v in made)
    first = made[0]["voucher_id"]
    vouchers.transition(ws, first, "redeemed", "ops:asha", reason="spent at G-12")
    with console_client(ws, "finance", "fay") as client:
        r = client.get("/console/giftcards/vouchers")
        assert r.status_code == 200 and listed(r.text, "voucher") == ids
        held = client.get("/console/giftcards/vouchers", params={"holder_id": DISTRIBUTOR, "status": "distributed"})
        assert len(listed(held.text, "voucher")) == 4
        assert "No voucher." in text_of(client.get("/console/giftcards/vouchers?program_id=NOPE").text)
        bad = client.get("/console/giftcards/vouchers?status=lost")
        assert bad.status_code == 400 and "status: &#39;lost&#39;" in bad.text
        monkeypatch.setattr(page, "PAGE", 3)
        pages, link = [], "/console/giftcards/vouchers?program_id=" + PROGRAM
        while link:
            got = client.get(link)
            pages.append(listed(got.text, "voucher"))
            link = next_link(got.text)
        assert [len(p) for p in pages] == [3, 3, 1] and [i for p in pages for i in p] == ids

        one = client.get(f"/console/giftcards/vouchers/{first}")
        text = text_of(one.text)
        assert one.status_code == 200 and "Face value 500.00 INR Price paid 487.50 INR" in text
        events = re.search(r'<table id="events">.*?</table>', one.text, re.S).group(0)
        assert [text_of(row).split(" ")[2:5] for row in re.findall(r"<tr><td>.*?</tr>", events, re.S)] == [
            ["issued", "distributed", "D-GIFTLY"], ["redeemed", "distributed", "redeemed"]]
        assert "spent at G-12" in text and "redeemed ops:asha spent at G-12 status: distributed → redeemed" in text
        assert client.get("/console/giftcards/vouchers/GV-NONE").status_code == 404
