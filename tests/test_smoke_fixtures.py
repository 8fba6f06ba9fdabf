from ops_pipeline.ledger import balances, ingest
from tests.factories import op, write_ops


def test_ingest_and_balance_on_both_databases(ws, tmp_path):
    f = write_ops(tmp_path / "co.csv", [op("o1", "100.00"), op("o2", "10.50", type="refund")])
    r = ingest.ingest_file(ws, f, "confirmed")
    assert (r.ingested, r.duplicates, r.quarantined) == (2, 0, 0)
    [b] = balances.get_balances(ws, "M1")
    assert b.confirmed_minor == 10000 - 320 - 1050
