"""The console's disbursement pages on SQLite and PostgreSQL, over an envelope the pipeline ran with the
sandbox (unresolvable addresses, bank failures) and a reconciled statement: envelopes with counters and step
states, an envelope's batches with their steps and counts per status; roles, 404 and 400."""

import re

from ops_pipeline.disbursements import statements
from tests.console import console_client, text_of
from tests.test_g2p_steps import run_all, world


def row_text(html, row_id):
    return text_of(re.search(rf'<tr id="{row_id}"[^>]*>(.*?)</tr>', html, re.S).group(1))


def test_envelopes_and_an_envelopes_batches(ws):
    sim, env, made = world(ws)
    run_all(ws)
    shipped = sorted(p for p, x in sim.state()["g2p_payments"].items() if x["status"] == "paid")
    sim.reverse_payment(shipped[0])
    statements.accept(ws, sim.sponsor_statement("SPONSOR-1").encode(), "sponsor.sta", "test")
    n = len(shipped)
    with console_client(ws, role="finance", sub="fiona") as client:
        html = client.get("/console/disbursements").text
        assert re.search(r'href="/console/disbursements"\s+class="here"', html)
        # envelope, program, cycle, due, declared, received, shipped, reconciled, reversed, pending, total, ...
        assert row_text(html, f"envelope-{env.id}") == (
            f"{env.id[:8]} CT1 2026-12 {env.schedule_date} 20 20 {n} {n - 1} 1 0 2,000.00 KES "
            "FUNDS_AVAILABLE / FUNDS_BLOCK_SUCCESS funds_check: PROCESSED funds_block: PROCESSED")
        assert f"envelope-{env.id}" not in client.get("/console/disbursements?program=OTHER").text

        page = client.get(f"/console/disbursements/envelopes/{env.id}")
        assert page.status_code == 200
        counters = text_of(re.search(r'<dd id="counters">(.*?)</dd>', page.text, re.S).group(1))
        assert counters == f"shipped {n} = reconciled {n - 1} + reversed 1 + pending 0"
        first = row_text(page.text, f"batch-{made[0].id}")
        assert "fa_resolution: PROCESSED disburse: PROCESSED notify: PROCESSED" in first
        assert " 10 1,000.00 KES " in first and "UNRESOLVED 1" in first  # B0-3 is not linked
        statuses = text_of(re.search(r'<dd id="statuses">(.*?)</dd>', page.text, re.S).group(1))
        assert sum(int(x) for x in re.findall(r"\d+", statuses)) == 20 and "REVERSED 1" in statuses

        unknown = client.get("/console/disbursements/envelopes/00000000-0000-4000-8000-000000000000")
        assert unknown.status_code == 404
        assert client.get("/console/disbursements/envelopes/not-a-uuid").status_code == 400
    with console_client(ws, role="analyst", sub="ann") as client:
        assert client.get("/console/disbursements").status_code == 403
