"""A fund-out process killed (SIGKILL) mid-batch, then run again: no payout twice, none lost, balances
exactly at the minimum, the ledger replays to the cache. SQLite and PostgreSQL."""

import os
import signal
import subprocess
import sys
import time
from datetime import datetime

from sqlalchemy import select

from ops_pipeline.db.schema import fundout_payouts
from ops_pipeline.fundout import batch, config
from ops_pipeline.ledger import balances
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings

BUSINESSES = 120
SLOT = "2026-11-21T22:00:00+00:00"
# Small chunks and bank requests, so that the kill lands between and inside them at this size.
RUN = f"""
from datetime import datetime
from ops_pipeline.fundout import bank, batch, payouts
from ops_pipeline.workspace import Workspace
payouts.CHUNK, bank.ITEMS_PER_REQUEST = 10, 5
batch.run_slot(Workspace.from_env(), datetime.fromisoformat("{SLOT}"), "doomed")
"""


def test_killed_mid_batch_then_rerun_pays_each_business_exactly_once(tmp_path, db_url, sim, sim_url):
    env = {"OPS_HOME": str(tmp_path / "home"), "OPS_DATABASE_URL": db_url, "OPS_BANK_URL": sim_url}
    ws = Workspace(make_settings(tmp_path / "home", db_url, OPS_BANK_URL=sim_url))
    ws.init()
    post_entries(ws, [Entry("ADJUSTMENT", f"f{i}", f"B{i:03d}", "EUR", 10_000 + i, "adjustment")
                      for i in range(BUSINESSES)], "funding")
    for i in range(BUSINESSES):
        config.create_config(ws, f"B{i:03d}", {"freqType": "H", "enabled": True, "minimumBalance": "1.5"}, "t")
    sim.inject("/payouts/batch", delay=0.1, times=10_000)  # a slow bank: the kill lands mid-batch
    proc = subprocess.Popen([sys.executable, "-c", RUN], env={**os.environ, **env})
    deadline = time.monotonic() + 60
    while len(sim.state()["payouts"]) < BUSINESSES // 4:
        assert proc.poll() is None and time.monotonic() < deadline, "the batch ended before the kill"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    paid_before = len(sim.state()["payouts"])
    assert paid_before < BUSINESSES
    sim.clear_faults()
    report = batch.run_slot(ws, datetime.fromisoformat(SLOT), "restarted")
    with ws.engine.connect() as conn:
        statuses = conn.execute(select(fundout_payouts.c.status)).scalars().all()
    at_bank = sim.state()["payouts"].values()
    assert sorted(p["business_id"] for p in at_bank) == [f"B{i:03d}" for i in range(BUSINESSES)]
    assert all(p["amount_minor"] == 10_000 + int(p["business_id"][1:]) - 150 for p in at_bank)
    assert (report.summary.paid, report.summary.pending) == (BUSINESSES, 0)
    assert statuses == ["posted"] * BUSINESSES
    assert {b.available_minor for i in range(BUSINESSES) for b in balances.get_balances(ws, f"B{i:03d}")} == {150}
    assert balances.rebuild(ws).differences == []
    ws.close()
