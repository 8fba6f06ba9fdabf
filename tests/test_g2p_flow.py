"""G2P interop on SQLite and PostgreSQL: an envelope through every step with the sandbox mapper and bank,
then the sandbox bank's own sponsor statement (one payment reversed, one line listed twice) uploaded through
`POST /g2p-bridge/upload_mt940`: counters, the duplicate exception and the ledger credit back, once."""

from fastapi.testclient import TestClient
from sqlalchemy import select

from ops_pipeline.api.app import create_app
from ops_pipeline.db.schema import g2p_disbursements
from ops_pipeline.disbursements import envelopes, recon
from ops_pipeline.ledger.balances import get_balances
from tests.test_g2p_recon import ledger_entries
from tests.test_g2p_recon_api import answer, upload
from tests.test_g2p_steps import run_all, world


def test_the_sandbox_banks_statement_reconciles_an_envelope_paid_through_every_step(ws):
    sim, env, _ = world(ws, batches_of=(15, 15))
    run_all(ws)
    with ws.engine.connect() as conn:
        shipped = conn.execute(select(g2p_disbursements.c.id).where(g2p_disbursements.c.status == "SHIPPED")
                               .order_by(g2p_disbursements.c.id)).scalars().all()
    assert len(shipped) >= 3
    sim.reverse_payment(shipped[0], "ACCOUNT_CLOSED")
    sim.list_twice(shipped[1])
    (before,) = get_balances(ws, "g2p:CT1", "KES")
    data = sim.sponsor_statement("SPONSOR-1").encode()

    with TestClient(create_app(ws.settings)) as client:
        client.ws = ws
        for _ in range(2):  # the same statement again changes nothing
            status, code, message = answer(upload(client, data))
            assert (status, code) == ("succ", None)
            assert (message["number_of_entries"], message["number_of_remittances"],
                    message["number_of_reversals"], message["number_of_exceptions"]) == (
                len(shipped) + 2, len(shipped), 1, 1)

    got = envelopes.envelope_status(ws, env.id).envelope
    assert (got.shipped_count, got.reconciled_count, got.reversed_count) == (len(shipped), len(shipped) - 1, 1)
    with ws.engine.connect() as conn:
        status = dict(conn.execute(select(g2p_disbursements.c.id, g2p_disbursements.c.status)
                                   .where(g2p_disbursements.c.id.in_(shipped))).all())
    assert status[shipped[0]] == "REVERSED" and status[shipped[1]] == "RECONCILED"
    assert sorted(status.values()).count("RECONCILED") == len(shipped) - 1
    (error,) = recon.exceptions(ws, message["statement_id"])
    assert (error.error_code, error.disbursement_id, error.amount_minor) == (
        recon.DUPLICATE_DISBURSEMENT, shipped[1], 10_000)
    assert ledger_entries(ws, "g2p-reversal:") == [
        (f"g2p-reversal:{shipped[0]}", "g2p:CT1", "KES", 10_000, "g2p_reversal")]
    (after,) = get_balances(ws, "g2p:CT1", "KES")
    assert after.settled_minor - before.settled_minor == 10_000
