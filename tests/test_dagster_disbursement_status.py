"""The `disbursement_status` asset on a real Dagster instance: the day's snapshot in the lake, its checks
passing after the sandbox bank's statement (a reversal, a duplicate line) is reconciled, and each check
failing when an envelope counter or the ledger program account is off."""

import dagster as dg
from sqlalchemy import update

from assets.disbursements.status import COUNTERS, LEDGER, disbursement_status
from ops_pipeline import analytics
from ops_pipeline.db.schema import g2p_envelopes
from ops_pipeline.disbursements import statements
from ops_pipeline.lake.tables import DISBURSEMENT_STATUS
from ops_pipeline.ledger.entries import Entry, post_entries
from tests.test_dagster_disbursements import ops  # noqa: F401 (the fixture)
from tests.test_g2p_steps import TODAY, run_all, world


def materialize(ops, instance):  # noqa: F811
    return dg.materialize([disbursement_status], partition_key=TODAY.isoformat(), resources={"ops": ops},
                          instance=instance, raise_on_error=False)


def checks(result) -> dict[str, bool]:
    return {c.check_name: c.passed for c in result.get_asset_check_evaluations()}


def lake_rows(ws) -> list[tuple]:
    with ws.lake.connect(DISBURSEMENT_STATUS.name) as con:
        return con.execute(f"SELECT snapshot_id, recon_state, count(*), sum(amount_minor) "
                           f"FROM lake_{DISBURSEMENT_STATUS.name} WHERE status_date = ? "
                           "GROUP BY ALL ORDER BY 1, 2", [TODAY]).fetchall()


def test_the_days_status_snapshot_and_its_checks(sqlite_ws, ops):  # noqa: F811
    ws = sqlite_ws
    sim, env, made = world(ws, batches_of=(8, 8))
    run_all(ws)
    shipped = sorted(p for p, x in sim.state()["g2p_payments"].items() if x["status"] == "paid")
    sim.reverse_payment(shipped[0])
    sim.list_twice(shipped[1])
    outcome = statements.accept(ws, sim.sponsor_statement("SPONSOR-1").encode(), "sponsor.sta", "test")
    assert (outcome.remittances, outcome.reversals, outcome.exceptions) == (len(shipped), 1, 1)

    with dg.instance_for_test() as instance:
        result = materialize(ops, instance)
        assert result.success and checks(result) == {COUNTERS: True, LEDGER: True}
        (mat,) = result.asset_materializations_for_node("disbursement_status")
        assert mat.metadata["dagster/row_count"].value == 16
        rows = lake_rows(ws)
        snapshot = mat.metadata["snapshot_id"].value
        states = {state: (n, minor) for sid, state, n, minor in rows if sid == snapshot}
        assert states["reconciled"] == (len(shipped) - 1, 10_000 * (len(shipped) - 1))
        assert states["reversed"] == (1, 10_000)
        assert sum(n for n, _ in states.values()) == 16

        # An envelope counter off by one: the counters check fails and names the envelope.
        with ws.engine.begin() as conn:
            conn.execute(update(g2p_envelopes).values(reconciled_count=g2p_envelopes.c.reconciled_count + 1))
        result = materialize(ops, instance)
        assert checks(result) == {COUNTERS: False, LEDGER: True}
        (bad,) = [c for c in result.get_asset_check_evaluations() if not c.passed]
        assert env.id in str(bad.metadata["examples"].value)
        with ws.engine.begin() as conn:
            conn.execute(update(g2p_envelopes).values(reconciled_count=g2p_envelopes.c.reconciled_count - 1))

        # A payout in the ledger for a disbursement the bank never paid: the check sees it (all the day's
        # disbursements count, not only those on a statement); credited back, it passes again.
        unpaid = next(i for b in made for i in b.disbursement_ids if i not in shipped)
        post_entries(ws, [Entry("PAYOUT", unpaid, "g2p:CT1", "KES", -10_000, "g2p_disbursement")], "stray")
        assert checks(materialize(ops, instance)) == {COUNTERS: True, LEDGER: False}
        post_entries(ws, [Entry("ADJUSTMENT", f"g2p-reversal:{unpaid}", "g2p:CT1", "KES", 10_000,
                                "g2p_reversal")], "stray-back")
        assert checks(materialize(ops, instance)) == {COUNTERS: True, LEDGER: True}

        # The ledger credited a reconciled disbursement back: the ledger check fails by its amount.
        post_entries(ws, [Entry("ADJUSTMENT", f"g2p-reversal:{shipped[2]}", "g2p:CT1", "KES", 10_000,
                                "g2p_reversal")], "test")
        result = materialize(ops, instance)
        assert checks(result) == {COUNTERS: True, LEDGER: False}
        (bad,) = [c for c in result.get_asset_check_evaluations() if not c.passed]
        (account,) = bad.metadata["examples"].value
        assert account["statement_debit_minor"] + account["pending_minor"] - account["ledger_debit_minor"] == 10_000
    assert len({sid for sid, *_ in lake_rows(ws)}) == 5  # one snapshot per materialization
    with analytics.connect(ws) as con:  # the analyst view: the latest snapshot of each day
        assert con.sql("SELECT count(DISTINCT snapshot_id), count(*), count(*) FILTER "
                       "(recon_state = 'reversed') FROM disbursement_status").fetchall() == [(1, 16, 1)]
