"""G2P connectors over real HTTP (the simulator served on 127.0.0.1 at OPS_G2P_MAPPER_URL / OPS_G2P_BANK_URL),
FA strings parsed into typed fields, and a disburse run killed (SIGKILL) while the bank answers, then re-run:
nothing paid or posted twice."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from ops_pipeline.db.schema import g2p_batch_steps
from ops_pipeline.disbursements import addresses, envelopes
from ops_pipeline.disbursements.connectors import ConnectorError, Connectors, Payment
from ops_pipeline.disbursements.pipeline import run_step
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings
from tests.test_g2p_steps import _entries, world

CLI = str(Path(sys.executable).with_name("ops-pipeline"))


def test_fa_strings_parse_into_typed_fields():
    bank = addresses.parse("bank_12345678_EXB_BR01_savings")
    assert (bank.fa_type, bank.address, bank.bank_code, bank.branch_code, bank.account_type) == (
        "BANK_ACCOUNT", "12345678", "EXB", "BR01", "savings")
    assert bank.masked == "****5678"
    mobile = addresses.parse("mobile_254700000001_mpesa")
    assert (mobile.fa_type, mobile.address, mobile.provider) == ("MOBILE_WALLET", "254700000001", "mpesa")
    email = addresses.parse("email_jane.doe@example.org_paypal")
    assert (email.fa_type, email.address, email.provider, email.masked) == (
        "EMAIL_WALLET", "jane.doe@example.org", "paypal", "ja***@example.org")
    for bad in ("bank_12_EXB", "iban_DE00", "", None, "mobile_abc_x"):
        with pytest.raises(addresses.UnparsableAddress, match="fa: a"):
            addresses.parse(bad)


@pytest.fixture
def http_ws(tmp_path, db_url, sim_url):
    ws = Workspace(make_settings(tmp_path / "home", db_url, OPS_G2P_BANK_URL=sim_url, OPS_G2P_MAPPER_URL=sim_url))
    ws.init()
    yield ws
    ws.close()


def test_connectors_speak_to_the_urls_of_the_settings(http_ws, sim):
    sim.open_account("SPONSOR-1", "KES", "50.00")
    sim.link_fa("B1", "mobile_254700000001_mpesa", "Jane")
    conns = Connectors.from_settings(http_ws.settings)
    try:
        assert conns.mapper.resolve(["B1", "B2"])["B1"].fa == "mobile_254700000001_mpesa"
        assert conns.mapper.resolve(["B2"])["B2"].fa is None
        assert conns.bank.check_funds("SPONSOR-1", "KES", 5000) is True
        assert conns.bank.check_funds("SPONSOR-1", "KES", 5001) is False
        with pytest.raises(ConnectorError, match="404"):
            conns.bank.check_funds("NOPE", "KES", 1)
        block = conns.bank.block_funds("SPONSOR-1", "KES", 3000, key="k1")
        assert conns.bank.block_funds("SPONSOR-1", "KES", 3000, key="k1") == block  # a retry blocks once
        with pytest.raises(ConnectorError, match="has not the funds"):
            conns.bank.block_funds("SPONSOR-1", "KES", 3000, key="k2")
        pay = Payment("d1", 1000, "KES", "B1", "MOBILE_WALLET", "254700000001", None, "n")
        (out,) = conns.bank.pay(block, [pay], key="p1")
        assert out.paid and conns.bank.pay(block, [pay], key="p2")[0].paid
    finally:
        conns.close()
    state = sim.state()
    assert state["g2p_accounts"]["SPONSOR-1"] == {"currency": "KES", "balance_minor": 4000, "blocked_minor": 2000}
    assert len(state["g2p_payments"]) == 1
    mt940 = sim.sponsor_statement("SPONSOR-1")
    assert ":25:SPONSOR-1" in mt940 and ":86:/EREF/d1/REMI/" in mt940 and "D10,00NTRF" in mt940
    sim.reverse_payment("d1", "ACCOUNT_CLOSED")
    status, reply = sim.handle("GET", "/g2p/bank/statements/camt053/SPONSOR-1")
    assert status == 200 and "<RvslInd>true</RvslInd>" in reply["content"] and "<Id>SPONSOR-1</Id>" in reply["content"]
    assert sim.handle("GET", "/g2p/bank/statements/pdf/SPONSOR-1")[0] == 404


def test_a_disburse_run_killed_while_the_bank_answers_pays_nothing_twice(http_ws, sim, sim_url):
    sim_world, env, _made = world(http_ws, batches_of=(8,))
    # `world` seeded the workspace's sandbox; the run here talks to `sim` over HTTP: seed it the same way.
    sim.open_account("SPONSOR-1", "KES", "1000000.00")
    sim.set_fail_share(0.4)
    for beneficiary, entry in sim_world.state()["g2p_fas"].items():
        sim.link_fa(beneficiary, entry["fa"], entry["name"])
    for step in ("fa_resolution", "funds_check", "funds_block"):
        assert run_step(http_ws, step, worker="w1").processed == 1
    sim.inject("/g2p/bank/payments", delay=60)  # pays, then answers a minute late
    env_vars = {**os.environ, "OPS_HOME": str(http_ws.home), "OPS_DATABASE_URL": http_ws.settings.database_url,
                "OPS_G2P_BANK_URL": sim_url, "OPS_G2P_MAPPER_URL": sim_url}
    child = subprocess.Popen([CLI, "disbursements", "run-step", "disburse"], env=env_vars,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not sim.state()["g2p_payments"] and time.monotonic() < deadline:
        time.sleep(0.2)
    first = sim.state()["g2p_payments"]
    assert len(first) == 7, child.poll() is not None and child.communicate()  # B0-3 is unresolved
    paid_once = {r for r, p in first.items() if p["status"] == "paid"}
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    sim.clear_faults()
    assert _entries(http_ws) == {} and envelopes.envelope_status(http_ws, env.id).envelope.shipped_count == 0
    assert run_step(http_ws, "disburse", worker="w2").claimed == 0  # the dead run's lease holds
    with http_ws.engine.begin() as conn:  # ... until it runs out
        conn.execute(update(g2p_batch_steps).where(g2p_batch_steps.c.step == "disburse")
                     .values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
    ran = run_step(http_ws, "disburse", worker="w2")
    assert (ran.claimed, ran.processed) == (1, 1)
    state = sim.state()
    assert state["g2p_payments"] == first
    assert state["g2p_accounts"]["SPONSOR-1"]["balance_minor"] == 100_000_000 - 10_000 * len(paid_once)
    assert sorted(_entries(http_ws)) == sorted(paid_once)
    assert envelopes.envelope_status(http_ws, env.id).envelope.shipped_count == len(paid_once)


def test_max_attempts_is_a_whole_number_from_the_settings(tmp_path):
    from ops_pipeline.errors import InvalidInput

    assert make_settings(tmp_path).g2p_max_attempts == 3
    assert make_settings(tmp_path, OPS_G2P_MAX_ATTEMPTS="5").g2p_max_attempts == 5
    for bad in ("0", "-1", "two", "1e3"):
        with pytest.raises(InvalidInput, match=f"OPS_G2P_MAX_ATTEMPTS: '{bad}' is not a whole number"):
            make_settings(tmp_path, OPS_G2P_MAX_ATTEMPTS=bad)
