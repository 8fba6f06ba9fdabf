"""The demo's chapter on paying principals: what Kettle & Co is owed for the vouchers it honoured this
month, paid by a four-eyes payment job through the bank (the sandbox), and confirmed only once the bank
says the transfer completed and its statement shows the debit. Running it again pays nothing twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from ops_pipeline.errors import Conflict
from ops_pipeline.giftcards import obligations
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.worker import run_pool
from ops_pipeline.partners.clients import sandbox
from ops_pipeline.statements.intake import load_statement
from ops_pipeline.workspace import Workspace

if TYPE_CHECKING:
    from ops_pipeline.demo.giftcards import GiftCardWorld

ACTOR, APPROVER = "demo-asha", "demo-ravi"
JOB = "principal_obligation_payment"


def run_obligations(ws: Workspace, world: GiftCardWorld, echo: Callable[[str], None]) -> None:
    """Compute the brand's obligation for the month so far, pay it, confirm it; print each step."""
    today = datetime.now(ws.settings.tz).date()
    try:
        found = obligations.compute(ws, world.brand_id, world.business_month, today, ACTOR)
    except Conflict as exc:  # a re-run later in the month: the earlier period stands
        echo(f"Obligations of {world.brand_id}: {exc}")
        return
    if not found:
        echo(f"Obligations of {world.brand_id}: nothing redeemed from {world.business_month} to {today}")
        return
    (owed,) = found
    period = f"{owed['period_start']}..{owed['period_end']}"
    echo(f"Obligation {owed['obligation_id']} to {world.brand_id} ({period}): "
         f"{owed['vouchers']} redeemed vouchers, gross {owed['gross']} less commission {owed['commission']}"
         f" and discount {owed['discount']} = {owed['amount']} {owed['currency']}")
    if owed["status"] == obligations.OPEN:
        job, _ = service.create_job(ws, type=JOB, actor=ACTOR, attributes={
            "obligation_id": owed["obligation_id"], "currency": owed["currency"], "amount": owed["amount"]},
            idempotency_key=f"demo:gc:pay:{owed['obligation_id']}")
        service.approve_job(ws, job.id, APPROVER)
        run_pool(ws, 1, threading.Event(), 0.2, until_idle=True, types=[JOB], name="demo-gc-payer")
        echo(f"  payment job {job.id} (approved by {APPROVER}): {service.get_job(ws, job.id).state}")
    for c in obligations.confirm(ws, ACTOR, [owed["obligation_id"]]):
        echo(f"  confirm: {c.outcome} ({c.detail})")
    bank = sandbox(ws.settings)
    if obligations.get(ws, owed["obligation_id"])["status"] == obligations.SENT:
        bank.settle_transfer(owed["obligation_id"])
        statement = bank.transfer_statement("mt940").encode()
        loaded = load_statement(ws, statement, f"principal-transfers-{today}.mt940", ACTOR)
        echo(f"  the bank completed the transfer; its statement loaded ({loaded.entries} entries)")
    for c in obligations.confirm(ws, ACTOR, [owed["obligation_id"]]):
        echo(f"  confirm: {c.outcome} ({c.detail})")
    echo(f"  obligation {owed['obligation_id']}: {obligations.get(ws, owed['obligation_id'])['status']}")
