"""The `daily_reconciliation` job type run by a real worker on SQLite and PostgreSQL: settlement, payouts and
a principal's portal export of the date reconciled, tickets opened for the breaks; a principal without an
export of the date fails the job naming it."""

from datetime import datetime

from ops_pipeline.giftcards import portal_exports
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.model import State
from ops_pipeline.recon import breaks, store
from ops_pipeline.reports import build
from tests import test_giftcards_jobs as job_tests
from tests import test_jobqueue_worker as worker_tests
from tests.portal_samples import PRINCIPAL, export_csv, seed_portal

ws, queue = worker_tests.ws, worker_tests.queue  # a workspace whose partner is the simulator, its queue
worker = job_tests.worker


def run(ws, worker, **attributes):
    job, _ = service.create_job(ws, type="daily_reconciliation", attributes=attributes, actor="ops:asha")
    while worker.run_once(5).claimed:
        pass
    return service.get_job(ws, job.id)


def test_the_job_runs_every_recon_of_the_date_and_opens_tickets(ws, worker):
    dates = seed_portal(ws)
    day = datetime.now(ws.settings.tz).date()
    portal_exports.load_export(ws, PRINCIPAL, export_csv(ws, dates), f"cafe-{day}.csv", "ops:asha")
    job = run(ws, worker, business_date=day.isoformat(), principal_id=PRINCIPAL)
    assert job.state == State.COMPLETED, job.last_error
    done = job.progress
    assert done["portal_recon"]["counts"]["matched_with_difference"] == 3
    assert done["portal_recon"]["counts"]["unmatched_external"] == 2
    assert done["settlement_recon"]["counts"]["matched"] == 0
    assert done["sync_break_tickets"] == {"tickets_opened": 6, "tickets_resolved": 0}
    assert len(store.latest_results(ws, "portal", day)) == 7
    assert {b["recon"] for b in breaks.open_breaks(ws)} == {"portal"}
    report = build.build_day(ws, day)
    html = report.files[0].read_text()
    assert f"<h2>Vouchers against principal portals {day}</h2>" in html
    assert "6 open breaks (a ticket each, source reconciliation); 1 lines quarantined." in html
    assert '<td class="">matched_with_difference</td><td class="">INR</td><td class="num">3</td>' \
           '<td class="num">1,500.00</td><td class="num">2,000.00</td>' in html

    without = run(ws, worker, business_date=day.isoformat())
    assert without.state == State.COMPLETED
    assert without.progress["portal_recon"] == {"skipped": "no principal_id"}

    missing = run(ws, worker, business_date="2026-01-01", principal_id=PRINCIPAL)
    assert missing.state == State.FAILED
    assert missing.last_error == "portal_recon: principal_id: no portal export of 'P-CAFE-01' dated 2026-01-01"
