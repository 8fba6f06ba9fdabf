"""The console's reconciliation page on SQLite and PostgreSQL: breaks with filters and exact amounts, paging,
a resolve form for ops only (audited with the console user, the break's ticket resolved), refusals."""

import re

from sqlalchemy import select

from ops_pipeline.console.pages import recon as page
from ops_pipeline.db.schema import recon_decisions, tickets
from ops_pipeline.recon import breaks, settlement
from tests.console import console_client, csrf, next_link, submit, text_of
from tests.test_recon_settlement import D, world  # noqa: F401 (fixture)


def listed(html: str) -> list[str]:
    return re.findall(r'<tr id="break-([0-9a-f]+)">', html)


def test_breaks_page_filters_pages_and_resolves(world, monkeypatch):  # noqa: F811
    settlement.run(world, D, actor="test")
    opened, _ = breaks.sync_tickets(world)
    ids = [b["break_id"] for b in breaks.open_breaks(world)]
    with console_client(world, "analyst", "ann") as client:
        r = client.get("/console/recon")
        assert r.status_code == 200 and listed(r.text) == ids
        assert "/resolve" not in r.text  # analysts read only
        row = re.search(r'<tr id="break-[0-9a-f]+">(?:(?!</tr>).)*c3(?:(?!</tr>).)*</tr>', r.text, re.S).group(0)
        assert "20.00 EUR 19.50 EUR 0.50 EUR" in text_of(row)
        only = client.get("/console/recon", params={"status": "unmatched_external", "recon": "settlement"})
        assert len(listed(only.text)) == 2
        assert "No open break." in text_of(client.get("/console/recon?date=2026-10-31").text)
        bad = client.get("/console/recon?recon=nope")
        assert bad.status_code == 400 and "recon: &#39;nope&#39;" in bad.text
        monkeypatch.setattr(page, "PAGE", 4)
        first = client.get("/console/recon")
        second = client.get(next_link(first.text))
        assert listed(first.text) + listed(second.text) == ids and next_link(second.text) is None
        assert submit(client, f"/console/recon/breaks/{ids[0]}/resolve", action="write-off",
                      note="x").status_code == 403
    with console_client(world, "ops", "olga") as client:
        token = csrf(client, "/console/recon")
        c5 = next(b["break_id"] for b in breaks.open_breaks(world) if b["internal_ids"] == ["c5"])
        r = submit(client, f"/console/recon/breaks/{c5}/resolve", token=token, action="write-off",
                   note="refunded offline")
        assert r.status_code == 303 and r.headers["location"] == "/console/recon"
        assert f"Break {c5}: write-off recorded" in text_of(client.get("/console/recon").text)
        r = submit(client, f"/console/recon/breaks/{c5}/resolve", action="ignore", note="x")
        assert r.status_code == 400 and "action: &#39;ignore&#39;" in r.text
    with world.engine.connect() as conn:
        [decision] = conn.execute(select(recon_decisions)).all()
        status = conn.execute(select(tickets.c.status).where(tickets.c.reference == c5)).scalar_one()
    assert (decision.actor, decision.action, decision.internal_ids, decision.note) == (
        "olga", "write_off", ["c5"], "refunded offline")
    assert (len(opened), status) == (6, "resolved")
