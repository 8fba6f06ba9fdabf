"""The demo's G2P chapter on a small envelope (SQLite and PostgreSQL): every step run, unresolvable
addresses and bank failures kept per disbursement, the day's statement (a reversal, a duplicate line)
reconciled, the counters adding up; running the chapter again changes nothing."""

from sqlalchemy import func, select

from ops_pipeline.db.schema import g2p_disbursements, g2p_envelopes, g2p_recon_errors, g2p_statements
from ops_pipeline.demo.disbursements import ACCOUNT, PROGRAM, run_disbursements
from ops_pipeline.partners.clients import sandbox
from tests.test_g2p_recon import ledger_entries


def statuses(ws) -> dict[str, int]:
    d = g2p_disbursements.c
    with ws.engine.connect() as conn:
        return dict(conn.execute(select(d.status, func.count()).group_by(d.status)).all())


def test_the_g2p_chapter_runs_an_envelope_through_every_step_and_reconciles_it(ws):
    lines: list[str] = []
    run_disbursements(ws, lines.append, beneficiaries=300)
    got = statuses(ws)
    # Every 97th beneficiary (from the 3rd) is unknown to the mapper, every 211th (from the 5th) has a bad FA.
    assert got["UNRESOLVED"] == len([n for n in range(300) if n % 97 == 3 or n % 211 == 5])
    assert got["FAILED"] >= 1 and got["REVERSED"] == 1
    assert sum(got.values()) == 300 and set(got) == {"UNRESOLVED", "FAILED", "RECONCILED", "REVERSED"}
    with ws.engine.connect() as conn:
        (env,) = conn.execute(select(g2p_envelopes)).all()
        (error,) = conn.execute(select(g2p_recon_errors.c.error_code)).all()
    assert (env.program, env.received_count, env.shipped_count) == (PROGRAM, 300, got["RECONCILED"] + 1)
    assert (env.reconciled_count, env.reversed_count) == (got["RECONCILED"], 1)
    assert error.error_code == "DUPLICATE_DISBURSEMENT"
    assert len(ledger_entries(ws, "g2p-reversal:")) == 1
    text = "\n".join(lines)
    assert "1 reversal, 1 exception" in text and "DUPLICATE_DISBURSEMENT" in text
    assert f"RECONCILED {got['RECONCILED']}" in text

    bank_before = sandbox(ws.settings).state()["g2p_accounts"][ACCOUNT]
    again: list[str] = []
    run_disbursements(ws, again.append, beneficiaries=300)
    assert statuses(ws) == got
    assert sandbox(ws.settings).state()["g2p_accounts"][ACCOUNT] == bank_before
    with ws.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(g2p_envelopes)) == 1
        assert conn.scalar(select(func.count()).select_from(g2p_statements)) == 1
        assert conn.scalar(select(func.count()).select_from(g2p_recon_errors)) == 1
    assert len(ledger_entries(ws, "g2p-reversal:")) == 1
    assert "already sent" in "\n".join(again)
