"""The analyst view `merchant_balances` is exact at query time: before any snapshot, and after one with newer
entries and holds; `balance_snapshots` keeps the history."""

from decimal import Decimal

from ops_pipeline import analytics
from ops_pipeline.ledger import adjustments, balances, holds, ingest, snapshots
from tests.factories import op, write_ops

QUERY = ("SELECT merchant_id, currency, confirmed_balance, settled_balance, held, available "
         "FROM merchant_balances ORDER BY 1, 2")
NAMES = ("confirmed_balance", "settled_balance", "held", "available")


def exact(ws, merchants=("M1", "M2")) -> list[tuple]:
    """What `ledger balance` says of these merchants, in the view's shape."""
    return [(m, b.currency, *(Decimal(b.to_dict()[k]) for k in NAMES))
            for m in merchants for b in balances.get_balances(ws, m)]


def view(ws) -> list[tuple]:
    return [tuple(r) for r in analytics.connect(ws).sql(QUERY).fetchall()]


def test_merchant_balances_is_exact_before_any_snapshot_and_after_one(ws, tmp_path):
    f = write_ops(tmp_path / "co.csv", [op("c1", "100.00"), op("c2", "2000", merchant="M2")])
    ingest.ingest_file(ws, f, "confirmed")
    ingest.ingest_file(ws, write_ops(tmp_path / "ro.csv", [op("c1", "100.00")]), "reconciled")
    # No snapshot yet: the view already shows every balance (it used to be empty until the first one).
    assert view(ws) == exact(ws) == [("M1", "EUR", *map(Decimal, ("96.8", "96.8", "0", "96.8"))),
                                     ("M2", "JPY", *map(Decimal, ("1930", "0", "0", "0")))]

    snapshots.write_snapshot(ws)
    # After the snapshot: new entries, an adjustment and a hold count at once.
    ingest.ingest_file(ws, write_ops(tmp_path / "co2.csv", [op("c3", "10.00")]), "confirmed")
    adjustments.adjust(ws, "M1", "EUR", 500, "TICKET-1", actor="test")
    holds.place_hold(ws, "M1", "EUR", 1000, actor="test")
    got = view(ws)
    assert got == exact(ws)
    assert got[0] == ("M1", "EUR", *map(Decimal, ("111.21", "101.8", "10", "91.8")))

    history = analytics.connect(ws).sql("SELECT count(*) FROM balance_snapshots").fetchall()[0][0]
    assert history == 2  # the snapshot's two balances, kept as history
