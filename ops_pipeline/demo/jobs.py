"""The demo's job-queue chapter: the partner/bank simulator on 127.0.0.1, a day of ops jobs, a four-eyes
approval and a worker pool that runs them all against the simulator.

Jobs that need another's result name it as a prerequisite (the program needs its principal, the distributor
its program, the top-up its wallet, ...), so the two workers run them in that order and every run of the
demo ends the same way."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.jobtypes import job_types_catalog
from ops_pipeline.jobqueue.worker import run_pool
from ops_pipeline.partners.app import serving
from ops_pipeline.partners.simulator import Simulator
from ops_pipeline.workspace import Workspace

# Each job type in creation order, with the jobs it waits for.
ORDER = {
    "principal_onboarding": (),
    "gift_card_program_creation": ("principal_onboarding",),
    "distributor_onboarding": ("gift_card_program_creation",),
    "distributor_wallet_topup": ("distributor_onboarding",),
    "voucher_restriction_push": ("gift_card_program_creation",),
    "fund_transfer_to_principal": ("principal_onboarding",),
    "manual": (),
}


def run_jobs(ws: Workspace, echo: Callable[[str], None]) -> None:
    examples = {t["type"]: t["example"] for t in job_types_catalog()}
    sim = Simulator()
    topup = examples["distributor_wallet_topup"]
    sim.add_deposit(topup["bank_reference"], topup["amount"], topup["currency"])
    with serving(sim) as url:
        echo(f"Job queue: partner and bank simulator on {url}")
        settings = dataclasses.replace(ws.settings, partner_url=url, bank_url=url)
        jobs_ws = Workspace(settings)
        try:
            created = {}
            for name, after in ORDER.items():
                job, _ = service.create_job(
                    jobs_ws,
                    type=name,
                    attributes=examples[name],
                    actor="demo-asha",
                    idempotency_key=f"demo:{name}",
                    depends_on=[created[p].id for p in after],
                )
                created[name] = job
            principal = created["principal_onboarding"]
            if principal.state == "Awaiting Approval":
                service.approve_job(jobs_ws, principal.id, actor="demo-vikram")
                echo(f"  job {principal.id} (principal_onboarding) approved by a second person (four eyes)")
            total = run_pool(jobs_ws, 2, threading.Event(), 0.2, until_idle=True, name="demo-worker")
            echo(f"  workers: {total.claimed} claimed, {total.completed} completed, {total.failed} failed")
            for name, job in created.items():
                now = service.get_job(jobs_ws, job.id)
                echo(f"  job {now.id:>3}  {name:<28} {now.state}")
        finally:
            jobs_ws.close()
    echo("  (the manual job waits for a person: ops-pipeline jobs complete ID)")
