"""G2P statement reconciliation on SQLite and PostgreSQL: remittances, a reversal credited to the ledger once,
every exception code, a refused account with nothing written, an idempotent re-run, the analyst views and the
CLI listing."""

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from ops_pipeline import analytics, audit
from ops_pipeline.db.schema import g2p_disbursements, g2p_envelopes, g2p_statements
from ops_pipeline.disbursements import batches, codes, envelopes, programs, recon, statements
from ops_pipeline.disbursements.batches import Item
from ops_pipeline.disbursements.codes import G2PError
from ops_pipeline.errors import NotFound
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings

TOMORROW = datetime.now(UTC).date() + timedelta(days=1)
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def setup_program(ws, amounts, ship):
    """A program CT1 (account ACC-1, KES), an envelope of `amounts`; the first `ship` shipped as the disburse
    step does it (status, shipped_at, the shipped counter and a ledger payout per disbursement)."""
    programs.add_program(ws, mnemonic="CT1", name="Cash transfer", sponsor_bank_code="EXAMPLE_BANK",
                         sponsor_account="ACC-1", currency="KES", actor="cli:ops")
    total = sum(int(a.replace(".", "")) for a in amounts)
    env = envelopes.create_envelope(ws, program="CT1", frequency="Monthly", cycle_code="2026-12",
                                    beneficiaries=len(amounts), disbursements=len(amounts),
                                    total=f"{total // 100}.{total % 100:02d}", schedule_date=TOMORROW,
                                    actor="partner:mis1")
    batch = batches.create_disbursements(
        ws, [Item(env.id, f"B{i}", f"Beneficiary {i}", a, "transfer") for i, a in enumerate(amounts)],
        actor="partner:mis1")
    ids = batch.disbursement_ids
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        conn.execute(update(g2p_disbursements).where(g2p_disbursements.c.id.in_(ids[:ship]))
                     .values(status="SHIPPED", shipped_at=now))
        conn.execute(update(g2p_envelopes).where(g2p_envelopes.c.id == env.id).values(shipped_count=ship))
    post_entries(ws, [Entry("PAYOUT", d, "g2p:CT1", "KES", -int(a.replace(".", "")), "g2p_disbursement")
                      for d, a in zip(ids[:ship], amounts, strict=False)], ingest_id="disburse-test")
    return env, ids


def mt940(ref, *lines, account="ACC-1", currency="KES") -> bytes:
    """A statement; each line (mark, amount, disbursement id, return reason or None)."""
    out = [f":20:{ref}", f":25:{account}", ":28C:1/1", f":60F:C261201{currency}1000000,00"]
    for n, (mark, amount, ref_, reason) in enumerate(lines, 1):
        out += [f":61:2612011201{mark}{amount}NTRFNONREF//BANK{n}",
                f":86:/EREF/{ref_}" + (f"/RTRN/{reason}" if reason else "")]
    return "\n".join([*out, f":62F:C261201{currency}0,00", ""]).encode()


def two_statements(ids) -> bytes:
    """One file, two statements of ACC-1: every outcome of a D and an RD line."""
    kes = mt940("STMT-1",
                ("D", "100,00", ids[0], None),  # reconciled
                ("D", "200,00", ids[1], None),  # reconciled, then reversed below
                ("D", "100,00", ids[0], None),  # the same remittance again
                ("D", "49,99", ids[2], None),  # not the amount sent
                ("D", "10,00", UNKNOWN, None),  # no such disbursement
                ("D", "70,00", ids[4], None),  # never shipped
                ("C", "5,00", ids[0], None),  # a credit: not a remittance, ignored
                ("RD", "200,00", ids[1], "ACCOUNT_CLOSED"),  # reversal of a remittance seen above
                ("RD", "30,00", ids[3], "ACCOUNT_DORMANT"))  # reversal of nothing seen
    usd = mt940("STMT-2", ("D", "30,00", ids[3], None), currency="USD")  # shipped in KES
    return kes + usd


def ledger_entries(ws, prefix):
    with ws.lake.connect("balance_operations") as con:
        return con.execute("SELECT falcon_operation_id, merchant_id, currency, amount_minor, type "
                           "FROM lake_balance_operations WHERE starts_with(falcon_operation_id, ?) ORDER BY 1",
                           [prefix]).fetchall()


def test_a_statement_reconciles_remittances_and_a_reversal_and_records_every_exception(ws):
    env, ids = setup_program(ws, ["100.00", "200.00", "50.00", "30.00", "70.00"], ship=4)
    data = two_statements(ids)
    r = statements.accept(ws, data, "sponsor.sta", "partner:mis1")
    assert (r.entries, r.remittances, r.reversals, r.exceptions, r.added) == (10, 2, 1, 6, 9)
    errors = recon.exceptions(ws, r.statement_id)
    assert [(x.entry_sequence, x.direction, x.error_code, x.amount_minor, x.currency) for x in errors] == [
        (3, "D", recon.DUPLICATE_DISBURSEMENT, 10_000, "KES"),
        (4, "D", codes.INVALID_DISBURSEMENT_AMOUNT, 4_999, "KES"),
        (5, "D", codes.INVALID_DISBURSEMENT_ID, 1_000, "KES"),
        (6, "D", recon.DISBURSEMENT_NOT_SHIPPED, 7_000, "KES"),
        (9, "RD", recon.INVALID_REVERSAL, 3_000, "KES"),
        (10, "D", codes.INVALID_DISBURSEMENT_CURRENCY_CODE, 3_000, "USD"),
    ]
    assert {x.error_code for x in errors} == set(recon.EXCEPTION_CODES)
    assert [(x.disbursement_id, x.bank_reference) for x in errors] == [
        (ids[0], "BANK3"), (ids[2], "BANK4"), (UNKNOWN, "BANK5"), (ids[4], "BANK6"), (ids[3], "BANK9"),
        (ids[3], "BANK1")]
    assert errors[0].detail.startswith("entry 3: disbursement") and "already remitted" in errors[0].detail

    got = {d.id: d for d in batches.disbursement_status(ws, ids)}
    assert [got[i].status for i in ids] == ["RECONCILED", "REVERSED", "SHIPPED", "SHIPPED", "RECEIVED"]
    assert got[ids[1]].reversal_reason == "ACCOUNT_CLOSED" and got[ids[1]].reversed_at is not None
    assert got[ids[0]].reconciled_at is not None
    e = envelopes.envelope_status(ws, env.id).envelope
    # shipped 4 = reconciled 1 + reversed 1 + pending 2
    assert (e.shipped_count, e.reconciled_count, e.reversed_count) == (4, 1, 1)

    status = recon.disbursement_recons(ws, [ids[0], ids[1], ids[3]])
    assert (status[ids[0]].remittance_statement_id, status[ids[0]].remittance_entry_sequence,
            status[ids[0]].remittance_bank_reference, status[ids[0]].reversal_statement_id) == (
        r.statement_id, 1, "BANK1", None)
    assert [x.error_code for x in status[ids[0]].exceptions] == [recon.DUPLICATE_DISBURSEMENT]
    assert (status[ids[1]].reversal_entry_sequence, status[ids[1]].reversal_reason) == (8, "ACCOUNT_CLOSED")
    assert [x.error_code for x in status[ids[3]].exceptions] == [recon.INVALID_REVERSAL,
                                                                 codes.INVALID_DISBURSEMENT_CURRENCY_CODE]
    assert ledger_entries(ws, "g2p-reversal:") == [
        (f"g2p-reversal:{ids[1]}", "g2p:CT1", "KES", 20_000, recon.REVERSAL_ENTRY_TYPE)]
    with ws.engine.connect() as conn:
        assert [h["action"] for h in audit.history(conn, "g2p_disbursement", ids[1])] == ["reconciled", "reversed"]
        assert [h["action"] for h in audit.history(conn, "g2p_statement", r.statement_id)] == ["accept", "reconcile"]

    # The same file again (and the same statement reconciled again): nothing changes, the ledger is credited once.
    again = statements.accept(ws, data, "sponsor-again.sta", "partner:mis1")
    assert (again.statement_id, again.remittances, again.reversals, again.exceptions, again.added) == (
        r.statement_id, 2, 1, 6, 0)
    assert recon.reconcile(ws, r.statement_id, "cli:ops").added == 0
    assert len(recon.exceptions(ws, r.statement_id)) == 6
    assert ledger_entries(ws, "g2p-reversal:") == [
        (f"g2p-reversal:{ids[1]}", "g2p:CT1", "KES", 20_000, recon.REVERSAL_ENTRY_TYPE)]
    e = envelopes.envelope_status(ws, env.id).envelope
    assert (e.reconciled_count, e.reversed_count) == (1, 1)

    # A later statement: the pending one remitted, a second reversal and a repeated remittance refused.
    later = statements.accept(ws, mt940("STMT-3", ("D", "30,00", ids[3], None), ("D", "100,00", ids[0], None),
                                        ("RD", "200,00", ids[1], "ACCOUNT_CLOSED")), "later.sta", "partner:mis1")
    assert (later.remittances, later.reversals, later.exceptions) == (1, 0, 2)
    assert [x.error_code for x in recon.exceptions(ws, later.statement_id)] == [recon.DUPLICATE_DISBURSEMENT,
                                                                                 recon.INVALID_REVERSAL]
    e = envelopes.envelope_status(ws, env.id).envelope
    assert (e.reconciled_count, e.reversed_count) == (2, 1)
    assert [s.statement_id for s in statements.list_statements(ws)] == [later.statement_id, r.statement_id]
    with pytest.raises(NotFound):
        recon.reconcile(ws, "0" * 64, "cli:ops")


def test_a_statement_of_another_account_is_refused_before_anything_is_written(ws):
    _, ids = setup_program(ws, ["100.00"], ship=1)
    for data in (mt940("STMT-X", ("D", "100,00", ids[0], None), account="ACC-OTHER"),
                 mt940("STMT-1", ("D", "100,00", ids[0], None)) + mt940("STMT-2", ("D", "1,00", ids[0], None),
                                                                         account="ACC-OTHER")):
        with pytest.raises(G2PError) as raised:
            statements.accept(ws, data, "other.sta", "partner:mis1")
        assert raised.value.code == statements.INVALID_ACCOUNT_NUMBER
        assert "'ACC-OTHER' is not the sponsor account of a configured program" in str(raised.value)
    with ws.lake.connect("bank_statement_entries") as con:
        assert con.execute("SELECT count(*) FROM lake_bank_statement_entries").fetchone() == (0,)
    with ws.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(g2p_statements)) == 0
    assert batches.disbursement_status(ws, ids)[0].status == "SHIPPED"


def test_camt053_reversal_and_the_analyst_views(ws):
    _, ids = setup_program(ws, ["100.00", "20.00", "5.00"], ship=2)

    def ntry(n, ref, amount, mark, reversal="false", reason=""):
        return (f"<Ntry><Amt Ccy='KES'>{amount}</Amt><CdtDbtInd>{mark}</CdtDbtInd><RvslInd>{reversal}</RvslInd>"
                f"<BookgDt><Dt>2026-12-0{n}</Dt></BookgDt><AcctSvcrRef>BANK-{n}</AcctSvcrRef><NtryDtls><TxDtls>"
                f"<Refs><EndToEndId>{ref}</EndToEndId></Refs><RmtInf><Ustrd>{reason}</Ustrd></RmtInf></TxDtls>"
                "</NtryDtls></Ntry>")
    camt = ("<?xml version='1.0'?><Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'>"
            "<BkToCstmrStmt><Stmt><Id>C-1</Id><Acct><Id><Othr><Id>ACC-1</Id></Othr></Id></Acct>"
            + ntry(1, ids[0], "100.00", "DBIT") + ntry(2, ids[1], "20.00", "DBIT")
            + ntry(3, ids[1], "20.00", "CRDT", "true", "ACCOUNT_NOT_FOUND") + ntry(4, "nope", "1.00", "DBIT")
            + "</Stmt></BkToCstmrStmt></Document>").encode()
    r = statements.accept(ws, camt, "camt.xml", "partner:mis1")
    assert (r.remittances, r.reversals, r.exceptions) == (2, 1, 1)
    assert batches.disbursement_status(ws, [ids[1]])[0].reversal_reason == "ACCOUNT_NOT_FOUND"

    con = analytics.connect(ws, operational=True)
    try:
        states = con.sql("SELECT disbursement_id, recon_state, amount FROM disbursements "
                         "ORDER BY beneficiary_id").fetchall()
        assert [(s[0], s[1], str(s[2])) for s in states] == [
            (ids[0], "reconciled", "100.0000"), (ids[1], "reversed", "20.0000"), (ids[2], "not_shipped", "5.0000")]
        assert con.sql("SELECT disbursement_id, remittance_entry_sequence, reversal_found, reversal_reason "
                       "FROM disbursement_recon ORDER BY 2").fetchall() == [
            (ids[0], 1, False, None), (ids[1], 2, True, "ACCOUNT_NOT_FOUND")]
        assert con.sql("SELECT program, account, entry_sequence, error_code, disbursement_id "
                       "FROM disbursement_recon_errors").fetchall() == [
            ("CT1", "ACC-1", 4, codes.INVALID_DISBURSEMENT_ID, "nope")]
    finally:
        con.close()
    internal = analytics.connect(ws)  # internal callers: the views exist, no DB rows are copied
    try:
        assert internal.sql("SELECT count(*) FROM disbursements").fetchall() == [(0,)]
    finally:
        internal.close()


def test_cli_lists_statements_with_their_exception_counts(tmp_path):
    home = tmp_path / "home"
    ws = Workspace(make_settings(home))
    ws.init()
    _, ids = setup_program(ws, ["100.00", "20.00"], ship=2)
    r = statements.accept(ws, mt940("S-1", ("D", "100,00", ids[0], None), ("D", "1,00", str(uuid.uuid4()), None)),
                          "s1.sta", "partner:mis1")
    ws.close()
    env = {**os.environ, "OPS_HOME": str(home)}
    env.pop("OPS_DATABASE_URL", None)
    cli = str(Path(sys.executable).with_name("ops-pipeline"))
    out = subprocess.run([cli, "disbursements", "statements", "--format", "json"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert [(s["statement_id"], s["program"], s["entries"], s["remittances"], s["reversals"], s["exceptions"])
            for s in shown] == [(r.statement_id, "CT1", 2, 1, 0, 1)]
