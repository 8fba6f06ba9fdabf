"""The Jobs pages in a real browser against `ops-pipeline api`, with `ops-pipeline jobs worker` and the partner
simulator over HTTP: alice creates a principal onboarding through the form (a field error first), her own
approval is refused (four eyes), bob approves, the worker runs it and the page shows it Completed."""

import subprocess
import time

import pytest

from ops_pipeline.jobqueue import service
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings
from tests.console import browser, browser_sign_in, screenshot
from tests.servers import CLI, api, environment

TYPE = "principal_onboarding"  # the one type that needs a second person's approval


@pytest.fixture
def ws(tmp_path, sim_url):
    workspace = Workspace(make_settings(tmp_path / "home", OPS_PARTNER_URL=sim_url, OPS_BANK_URL=sim_url))
    workspace.init()
    yield workspace
    workspace.close()


def state_of(page) -> str:
    return page.inner_text("#job-state").strip()


@pytest.mark.slow
def test_create_with_a_field_error_approve_as_a_second_person_and_watch_it_complete(ws, sim, tmp_path):
    env = environment(ws)
    with api(env, tmp_path / "api.err") as base_url, browser() as chromium:
        alice = browser_sign_in(chromium, base_url, ws, "ops", "alice")
        alice.goto("/console/jobs/new")
        alice.click(f"#job-types a[href$='/{TYPE}']")
        alice.click("#fill-example")
        alice.fill("[name='bank_account.ifsc']", "HDFC1234567")  # the fifth character must be 0
        alice.click("#create")
        error = alice.locator("#error-bank_account\\.ifsc")
        assert error.inner_text() == "'HDFC1234567' is not an IFSC code (4 letters, 0, 6 letters or digits)"
        # the error is next to its field (in the same field block), and what was typed is kept
        assert alice.locator(".field:has(#bank_account\\.ifsc) .field-error").inner_text() == error.inner_text()
        assert alice.input_value("[name='bank_account.ifsc']") == "HDFC1234567"
        screenshot(alice, "jobs-create-error")

        alice.fill("[name='bank_account.ifsc']", "HDFC0001234")
        alice.click("#create")
        alice.wait_for_url("**/console/jobs/*")
        job_id = int(alice.url.rsplit("/", 1)[1])
        assert state_of(alice) == "Awaiting Approval"
        assert f"Job {job_id} created: Awaiting Approval" in alice.inner_text(".flash")
        assert "be***@okhdfc" in alice.inner_text("#attributes")
        assert "beanthere.g12@okhdfc" not in alice.content()

        alice.click("form.approve button")  # four eyes: she created it
        assert f"job {job_id}: approver 'alice' created it; another person must approve" in alice.inner_text(".error")
        assert service.get_job(ws, job_id).approved_by is None

        bob = browser_sign_in(chromium, base_url, ws, "ops", "bob")
        bob.goto(f"/console/jobs/{job_id}")
        bob.click("form.approve button")
        bob.wait_for_url(f"**/console/jobs/{job_id}")
        assert state_of(bob) == "Created" and bob.inner_text("#approved-by") == "bob"

        worker = subprocess.Popen([CLI, "jobs", "worker", "--threads", "1", "--poll", "0.2"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=(tmp_path / "worker.err").open("wb"))
        try:
            deadline = time.monotonic() + 60
            while state_of(bob) != "Completed":
                assert worker.poll() is None, (tmp_path / "worker.err").read_text()
                assert time.monotonic() < deadline, f"job {job_id} is still {state_of(bob)}"
                time.sleep(0.3)
                bob.reload()
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        for step in ("create_principal", "register_beneficiary"):
            assert bob.inner_text(f"#steps li[data-step='{step}'] .state") == "done"
        history = bob.inner_text("#history")
        assert "Awaiting Approval\tCreated\tbob\tapproved" in history and "Completed" in history
        screenshot(bob, "jobs-detail")

        bob.goto("/console/jobs?state=Completed")
        assert bob.inner_text(f"#jobs tr[data-id='{job_id}'] .state") == "Completed"
        other, _ = service.create_job(ws, type="manual", attributes={"title": "Call the bank"}, actor="carol")
        bob.goto("/console/jobs")
        assert bob.inner_text("#by-state").split() == ["1", "Created"]  # live jobs only
        assert [int(r.get_attribute("data-id")) for r in bob.locator("#jobs tbody tr").all()] == [other.id, job_id]
        screenshot(bob, "jobs-list")
    assert sim.state()["principals"]["P-CAFE-01"]["upi_vpas"] == ["be***@okhdfc", "be***@ybl"]
