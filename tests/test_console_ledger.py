"""The console's ledger pages on SQLite and PostgreSQL: a merchant's exact balances (the REST API's figures),
holds and entries; the quarantine by reason, paged; "Reprocess" through the form, audited with the console
user; role and CSRF refusals; bad parameters as 400 pages."""

import re
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ops_pipeline.api.app import create_app
from ops_pipeline.auth import mint_token
from ops_pipeline.db.schema import audit_log
from ops_pipeline.ledger import holds, ingest, merchants
from ops_pipeline.ledger.queries import open_quarantine_by_reason
from tests.console import console_client, csrf, next_link, submit, text_of
from tests.factories import MERCHANTS, op, write_merchants, write_ops


@pytest.fixture
def funded(ws, tmp_path):
    """M1 (EUR, 2.9% + 0.30): 1300.00 captured, confirmed and reconciled, 100.00 held; M3 (BHD, 1.25% +
    0.005): 100.000 captured and confirmed only."""
    rows = [op("c1", "1300.00"), op("b1", "100.000", merchant="M3")]
    ingest.ingest_file(ws, write_ops(tmp_path / "co.csv", rows), "confirmed")
    ingest.ingest_file(ws, write_ops(tmp_path / "ro.csv", rows[:1]), "reconciled")
    holds.place_hold(ws, "M1", "EUR", 10000, actor="test", hold_id="h-1", reason="dispute 7")
    return ws


def api_balances(ws, merchant: str) -> dict[str, dict]:
    with TestClient(create_app(ws.settings)) as client:
        r = client.get(f"/api/balances/{merchant}",
                       headers={"Authorization": f"Bearer {mint_token(ws.settings, 'ops', 'api')}"})
    assert r.status_code == 200, r.text
    return {b["currency"]: b for b in r.json()["balances"]}


def rows_of(html: str, table: str) -> list[str]:
    """The text of each body row of table `#table`."""
    body = re.search(rf'<table id="{table}">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return [text_of(r) for r in re.findall(r"<tr.*?</tr>", body, re.S)]


def shown(html: str, currency: str) -> dict[str, str]:
    """The balance row of `currency` as a person reads it: column -> text."""
    row = re.search(rf'<tr data-currency="{currency}">(.*?)</tr>', html, re.S).group(1)
    return {name: text_of(value) for name, value in re.findall(r'<td class="num (\w+)">(.*?)</td>', row, re.S)}


def test_merchant_page_shows_the_rest_apis_exact_balances_holds_and_entries(funded):
    with console_client(funded, "finance", "fiona") as client:
        page = client.get("/console/ledger/merchants/M1")
        assert page.status_code == 200, page.text
        eur = shown(page.text, "EUR")
        assert eur == {"confirmed": "1,262.00 EUR", "settled": "1,262.00 EUR", "held": "100.00 EUR",
                       "available": "1,162.00 EUR", "reserved": "0.00 EUR"}
        api = api_balances(funded, "M1")["EUR"]
        for name, key in (("confirmed", "confirmedBalance"), ("settled", "settledBalance"), ("held", "held"),
                          ("available", "available")):
            assert eur[name] == f"{Decimal(api[key]):,} EUR"
        text = text_of(page.text)
        assert "h-1 active 100.00 EUR" in text and "dispute 7" in text
        entries = [" ".join(r.split()[4:8]) for r in rows_of(page.text, "entries")]  # source type amount
        assert sorted(entries) == sorted(["CO capture 1,300.00 EUR", "CO psp_fee -38.00 EUR",
                                          "RO capture 1,300.00 EUR", "RO psp_fee -38.00 EUR"])
        assert rows_of(page.text, "entries")[0].split()[4] == "RO"  # newest first

        bhd = shown(client.get("/console/ledger/merchants/M3").text, "BHD")
        assert bhd["confirmed"] == "98.745 BHD" == f"{Decimal(api_balances(funded, 'M3')['BHD']['confirmedBalance'])} BHD"
        assert bhd["settled"] == "0.000 BHD"

        assert client.get("/console/ledger?merchant=M3").headers["location"] == "/console/ledger/merchants/M3"
        missing = client.get("/console/ledger/merchants/NOPE")
        assert missing.status_code == 404 and "'NOPE' has no balances" in text_of(missing.text)


def test_analysts_cannot_read_the_ledger(ws):
    with console_client(ws, "analyst", "ann") as client:
        for path in ("/console/ledger", "/console/ledger/merchants/M1", "/console/ledger/quarantine"):
            r = client.get(path)
            assert r.status_code == 403 and "does not read the ledger" in text_of(r.text), path


def quarantine_some(ws, tmp_path, unknown: int = 2):
    """Rows of a merchant context not yet loaded (psp9) and one with a negative amount."""
    rows = [op("ok", "10.00"), op("bad", "-1")] + [op(f"x{i}", "3.00", psp_id="psp9") for i in range(unknown)]
    r = ingest.ingest_file(ws, write_ops(tmp_path / "co.csv", rows), "confirmed")
    assert (r.ingested, r.quarantined) == (1, 1 + unknown)


def test_quarantine_counts_by_reason_are_the_lakes_and_rows_are_paged(ws, tmp_path):
    quarantine_some(ws, tmp_path, unknown=52)
    with console_client(ws, "finance", "fiona") as client:
        page = client.get("/console/ledger/quarantine")
        assert page.status_code == 200, page.text
        assert open_quarantine_by_reason(ws) == {"unknown_merchant": 52, "non_positive_amount": 1}
        text = text_of(page.text)
        assert "unknown_merchant 52" in text and "non_positive_amount 1" in text and "Total 53" in text
        assert 'action="/console/ledger/quarantine/reprocess"' not in page.text  # finance reads only
        first = client.get("/console/ledger/quarantine?reason=unknown_merchant")
        assert first.text.count('<tr id="q-') == 50
        assert "co.csv" in first.text and "psp9" in first.text and "non_positive_amount</code>" not in first.text
        more = next_link(first.text)
        second = client.get(more)
        assert second.text.count('<tr id="q-') == 2 and 'rel="next"' not in second.text
        ids = {line.split('"')[0] for page in (first, second) for line in page.text.split('<tr id="q-')[1:]}
        assert len(ids) == 52
        bad = client.get("/console/ledger/quarantine?status=closed")
        assert bad.status_code == 400 and "status: 'closed' is not one of open, resolved, all" in text_of(bad.text)
        bad = client.get("/console/ledger/quarantine?reason=gremlins")
        assert bad.status_code == 400 and "reason: 'gremlins'" in text_of(bad.text)


def test_reprocess_from_the_console_resolves_rows_whose_cause_is_gone_and_is_audited(ws, tmp_path):
    quarantine_some(ws, tmp_path)
    for role in ("analyst", "finance"):
        with console_client(ws, role, "someone") as client:
            r = submit(client, "/console/ledger/quarantine/reprocess", token=csrf(client))
            assert r.status_code == 403, role
    with console_client(ws, "ops", "alice") as client:
        assert submit(client, "/console/ledger/quarantine/reprocess", token="").status_code == 403
        merchants.load(ws, write_merchants(tmp_path / "m2.csv", [*MERCHANTS, ("psp9", "lm1", "s1", "EUR", "M9", "",
                                                                             "1", "0")]))
        r = submit(client, "/console/ledger/quarantine/reprocess")
        assert r.status_code == 303 and r.headers["location"] == "/console/ledger/quarantine"
        page = client.get("/console/ledger/quarantine").text
        assert "Reprocessed 3 quarantined rows from 1 files: 2 resolved, 1 still quarantined." in text_of(page)
        assert rows_of(page, "quarantine-reasons") == ["non_positive_amount 1"]
        [still] = rows_of(page, "quarantine-rows")
        assert "co.csv (CO) 2 non_positive_amount" in still and still.endswith(" open")
        resolved = rows_of(client.get("/console/ledger/quarantine?status=resolved").text, "quarantine-rows")
        assert [r.split()[2:4] + r.split()[-3:-2] for r in resolved] == [["4", "unknown_merchant", "resolved"],
                                                                        ["3", "unknown_merchant", "resolved"]]
        assert open_quarantine_by_reason(ws) == {"non_positive_amount": 1}
        assert "0.00 EUR" not in shown(client.get("/console/ledger/merchants/M9").text, "EUR")["confirmed"]
    with ws.engine.connect() as conn:
        audit = conn.execute(select(audit_log).where(audit_log.c.entity_type == "ledger_quarantine")).all()
    [run] = [a for a in audit if a.actor == "alice"]
    assert (run.action, run.after["resolved"], run.after["still_quarantined"]) == ("reprocess", 2, 1)
