"""The demo's fund-out chapter: a dozen merchants schedule payouts, the current slot runs against the
built-in bank sandbox, one merchant cashes out by hand, and the notifications wait in the outbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select

from ops_pipeline.db.schema import balance_cache
from ops_pipeline.fundout import batch, cashout, config
from ops_pipeline.money import to_major
from ops_pipeline.notify import dispatch, outbox
from ops_pipeline.workspace import Workspace

MINIMUMS = ("0", "250", "1000.5")


def run_fundout(ws: Workspace, echo: Callable[[str], None]) -> None:
    with ws.engine.connect() as conn:
        richest = conn.execute(
            select(balance_cache.c.merchant_id, balance_cache.c.currency, balance_cache.c.settled_minor)
            .order_by(balance_cache.c.settled_minor.desc(), balance_cache.c.merchant_id).limit(12)
        ).all()
    for i, (merchant, _, _) in enumerate(richest[1:]):
        config.put_config(ws, merchant, {"freqType": "H", "enabled": True, "minimumBalance": MINIMUMS[i % 3],
                                  "notifyEmail": f"finance@{merchant.lower()}.example"}, "demo-merchant")
    merchant, currency, settled = richest[0]
    amount = str(to_major(settled // 10, currency))
    payout = cashout.cashout(ws, merchant, amount, currency, "demo", idempotency_key=f"demo-{amount}")
    echo(f"Fund-out: manual cash-out of {amount} {currency} by {merchant}: {payout.status}")
    [report] = batch.run_due(ws, "demo-scheduler", now=datetime.now(UTC))[-1:]
    s = report.summary
    paid = ", ".join(f"{amount} {cur}" for cur, amount in s.paid_amounts.items()) or "nothing"
    echo(f"  batch {report.id} of slot {report.slot.isoformat()}: {s.paid} paid ({paid}), "
         f"{s.skipped} skipped at their minimum, {s.failed} failed")
    sent = dispatch(ws).counts
    with ws.engine.connect() as conn:
        waiting = outbox.size(conn)
    echo(f"  {waiting} notifications in the outbox ({sent['unsent']} recorded, not sent: set OPS_SMTP_URL "
         "and OPS_WEBHOOK_URL to deliver them)")
