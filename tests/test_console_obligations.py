"""The console's obligations page: what principals are owed, filtered, with "confirm" for ops only (a
confirm of an obligation not sent says so and changes nothing); finance reads."""

from datetime import datetime

from ops_pipeline.giftcards import kinds, obligations, vouchers
from tests import giftcard_samples as samples
from tests.console import console_client, submit, text_of

PRINCIPAL, PROGRAM = "P-CAFE-01", "GC-ORION-FESTIVE"


def test_obligations_page_lists_and_confirms_only_sent_ones(ws):
    samples.seed(ws)
    kinds.update(ws, kinds.PRINCIPALS, PRINCIPAL, {"terms": {"commission_percent": "2", "discount_percent": "1"}},
                 "ops:asha")
    for v in vouchers.issue(ws, PROGRAM, "500.00", 3, "487.50", "ops:asha", "D-GIFTLY", distributed=True):
        vouchers.transition(ws, v["voucher_id"], "redeemed", "pos:orion")
    today = datetime.now(ws.settings.tz).date()
    [owed] = obligations.compute(ws, PRINCIPAL, today, today, "ops:asha")
    key = owed["obligation_id"]
    with console_client(ws, "finance", "fin") as client:
        page = text_of(client.get("/console/obligations?status=open").text)
        assert f"{key} {PRINCIPAL} {today}..{today} 3 1500.00 30.00 15.00 1455.00 INR open" in page
        assert "<button>Confirm" not in client.get("/console/obligations").text  # none sent, and finance reads
        assert "No obligation" in text_of(client.get("/console/obligations?status=paid").text)
        assert client.get("/console/obligations?status=lost").status_code == 400
    with console_client(ws, "ops", "asha") as client:
        answer = submit(client, f"/console/obligations/{key}/confirm")
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/console/obligations?principal_id={PRINCIPAL}"
        shown = text_of(client.get(answer.headers["location"]).text)
        assert f"Obligation {key} is open: only a sent one is confirmed." in shown
        assert submit(client, "/console/obligations/GCO-NOPE/confirm").status_code == 404
    assert obligations.get(ws, key)["status"] == "open"
