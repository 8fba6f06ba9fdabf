"""The console's Jobs pages on SQLite and PostgreSQL: filters and pages of the queue, a job's masked page,
the people's actions (state changed, history naming the console user), the create form built from the
type's JSON Schema with errors next to their fields, roles, CSRF, bad parameters."""

import copy
import html
import re

import pytest

from ops_pipeline.crypto import cipher
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.jobtypes import JOB_TYPES
from ops_pipeline.jobqueue.model import NewJob, State
from tests.console import console_client, next_link, submit, text_of

IDS = re.compile(r'<tr class="[^"]*" data-id="(\d+)"')


def manual(ws, title="Call the bank", actor="carol", priority="Medium"):
    job, _ = service.create_job(ws, type="manual", attributes={"title": title}, priority=priority, actor=actor)
    return job


def onboarding(ws, actor="carol"):
    example = copy.deepcopy(JOB_TYPES["principal_onboarding"].example)
    return service.create_job(ws, type="principal_onboarding", attributes=example, actor=actor)[0]


def listed(client, query=""):
    r = client.get(f"/console/jobs{query}")
    assert r.status_code == 200, r.text
    return [int(i) for i in IDS.findall(r.text)], r.text


def history(ws, job_id):
    return [(h["to_state"], h["actor"], h["reason"]) for h in service.get_job(ws, job_id).history]


def test_filters_narrow_the_queue_and_the_state_strip_counts_live_jobs(ws):
    a = manual(ws, actor="alice", priority="High")
    b = manual(ws, actor="bob", priority="Low")
    c = onboarding(ws, actor="alice")
    topup, _ = service.create_job(ws, type="distributor_wallet_topup", actor="bob",
                                  attributes={"distributor_id": "D-1", "amount": "10.00", "bank_reference": "UTR123456"})
    service.cancel_job(ws, b.id, "alice", "duplicate")  # archived as Failed
    with console_client(ws) as client:
        assert listed(client)[0] == [topup.id, c.id, b.id, a.id]
        assert listed(client, "?type=manual")[0] == [b.id, a.id]
        assert listed(client, "?created_by=alice")[0] == [c.id, a.id]
        assert listed(client, "?priority=High")[0] == [a.id]
        assert listed(client, "?state=Failed")[0] == [b.id]  # from the archive
        assert listed(client, "?state=Awaiting+Approval&type=principal_onboarding")[0] == [c.id]
        assert listed(client, "?type=manual&created_by=bob&state=Created")[0] == []
        ids, page = listed(client, "?type=&state=&priority=&created_by=")  # the filter form's "any"
        assert ids == [topup.id, c.id, b.id, a.id]
        strip = text_of(page.split('id="by-state"')[1].split(">", 1)[1].split("</div>")[0])
        assert strip == "2 Created 1 Awaiting Approval"  # live jobs only: the cancelled one is archived


def test_the_cursor_gives_the_next_page_without_overlap(ws):
    ids = service.queue(ws).enqueue_many([NewJob(type="manual", attributes={"title": f"t{i}"}, created_by="carol")
                                          for i in range(57)])
    with console_client(ws) as client:
        first, page = listed(client, "?type=manual")
        assert first == sorted(ids, reverse=True)[:50]
        next_url = next_link(page)
        assert next_url == f"/console/jobs?type=manual&after={first[-1]}"
        second, page = listed(client, next_url.removeprefix("/console/jobs"))
        assert second == sorted(ids, reverse=True)[50:] and 'rel="next"' not in page


@pytest.mark.parametrize("query, named", [
    ("state=Nope", "state: 'Nope' is not one of Created"),
    ("priority=9", "priority: '9' is not one of High, Medium, Low"),
    ("type=nope", "type: 'nope' is not one of principal_onboarding"),
    ("after=0", "after: '0' is invalid (Input should be greater than or equal to 1)"),
    (f"created_by={'x' * 129}", "created_by: 'xxxx"),
])
def test_a_bad_filter_is_a_400_naming_it(ws, query, named):
    with console_client(ws, "analyst", "ann") as client:
        r = client.get(f"/console/jobs?{query}")
    assert r.status_code == 400 and named in text_of(r.text)


def test_a_job_page_masks_vpas_and_bank_details_and_shows_steps_and_history(ws):
    job = onboarding(ws)
    with console_client(ws) as client:
        r = client.get(f"/console/jobs/{job.id}")
        assert client.get("/console/jobs/987654").status_code == 404
    text = text_of(r.text)
    for secret in ("beanthere.g12@okhdfc", "50100123456789", "HDFC0001234", "asha@beanthere.example", "+919812345678"):
        assert secret not in r.text
    for masked in ("be***@okhdfc", "**********6789", "HDFC*******", "as***@beanthere.example"):
        assert masked in text
    assert "Awaiting Approval" in text and "pending create_principal pending register_beneficiary" in text
    assert "Awaiting Approval carol created" in text  # history: to state, by, why
    assert all(f"/console/jobs/{job.id}/{a}" in r.text for a in ("approve", "reject", "cancel"))
    assert f"/console/jobs/{job.id}/retry" not in r.text


def test_each_action_changes_the_state_and_the_history_names_the_console_user(ws):
    to_approve, to_reject, to_cancel, to_do = onboarding(ws), onboarding(ws), manual(ws), manual(ws, "Sign form")
    with console_client(ws, "ops", "alice") as client:
        r = submit(client, f"/console/jobs/{to_approve.id}/approve")
        assert r.status_code == 303 and r.headers["location"] == f"/console/jobs/{to_approve.id}"
        assert f"Job {to_approve.id} approved: Created" in text_of(client.get(r.headers["location"]).text)
        assert history(ws, to_approve.id)[-1] == ("Created", "alice", "approved")
        assert service.get_job(ws, to_approve.id).approved_by == "alice"

        assert submit(client, f"/console/jobs/{to_reject.id}/reject", reason="").status_code == 400
        assert submit(client, f"/console/jobs/{to_reject.id}/reject", reason="wrong bank").status_code == 303
        assert history(ws, to_reject.id)[-1] == ("Failed", "alice", "rejected: wrong bank")

        assert submit(client, f"/console/jobs/{to_cancel.id}/cancel", reason="duplicate").status_code == 303
        assert history(ws, to_cancel.id)[-1] == ("Failed", "alice", "cancelled: duplicate")
        assert f"/console/jobs/{to_cancel.id}/retry" in client.get(f"/console/jobs/{to_cancel.id}").text
        assert submit(client, f"/console/jobs/{to_cancel.id}/retry").status_code == 303
        assert history(ws, to_cancel.id)[-1] == ("Created", "alice", "retry requested")
        assert service.get_job(ws, to_cancel.id).state == State.CREATED

        assert submit(client, f"/console/jobs/{to_do.id}/complete", note="signed and sent").status_code == 303
        done = service.get_job(ws, to_do.id)
        assert (done.state, done.progress) == (State.COMPLETED, {"completed_by": "alice", "note": "signed and sent"})
        assert history(ws, to_do.id)[-1] == ("Completed", "alice", None)
        shown = client.get(f"/console/jobs/{to_do.id}").text  # a finished job has no actions section
        assert "note signed and sent" in text_of(shown) and 'id="job-actions"' not in shown

        r = submit(client, f"/console/jobs/{to_do.id}/cancel", reason="late")  # already Completed
        assert r.status_code == 409 and "cannot cancel: state is Completed" in text_of(r.text)


def test_the_create_form_is_the_types_schema_with_errors_next_to_their_fields(ws):
    with console_client(ws, "ops", "alice") as client:
        form = client.get("/console/jobs/new/principal_onboarding").text
        for name in ("principal_id", "entity.address.postal_code", "bank_account.ifsc", "upi_vpas", "commission_percent"):
            assert f'name="{name}"' in form, name
        assert '<option>proprietorship</option>' in form and 'value="IN"' in form  # enum, default
        example = client.get("/console/jobs/new/principal_onboarding?example=1").text
        values = {n: html.unescape(v) for n, v in re.findall(r'<input id="[^"]+" name="([^"]+)" value="([^"]*)"', example)}
        values["upi_vpas"] = "beanthere.g12@okhdfc\n\nBAD VPA"
        values["entity.entity_type"] = "company"
        values["bank_account.ifsc"] = "HDFC1234567"  # the fifth character must be 0

        r = submit(client, "/console/jobs/new/principal_onboarding", **values, priority="High")
        assert r.status_code == 400
        error = re.search(r'id="error-bank_account.ifsc">([^<]+)<', r.text).group(1)
        assert html.unescape(error) == "'HDFC1234567' is not an IFSC code (4 letters, 0, 6 letters or digits)"
        vpa = html.unescape(re.search(r'id="error-upi_vpas">([^<]+)<', r.text).group(1))
        assert vpa == "line 2: 'BAD VPA' is not a valid UPI VPA (handle@provider)"  # blank lines are skipped
        assert 'value="HDFC1234567"' in r.text and "<option selected>High</option>" in r.text  # values kept
        assert service.list_jobs(ws).jobs == []

        values.update({"bank_account.ifsc": "HDFC0001234", "upi_vpas": "beanthere.g12@okhdfc\nbeanthere@ybl"})
        r = submit(client, "/console/jobs/new/principal_onboarding", **values, priority="High", idempotency_key="k-1")
        job = service.list_jobs(ws).jobs[0]
        assert r.status_code == 303 and r.headers["location"] == f"/console/jobs/{job.id}"
        assert (job.state, job.priority, job.created_by) == (State.AWAITING_APPROVAL, "High", "alice")
        assert service.public_view(job)["attributes"]["upi_vpas"] == ["be***@okhdfc", "be***@ybl"]
        expected = JOB_TYPES["principal_onboarding"].validate(JOB_TYPES["principal_onboarding"].example)
        opened = JOB_TYPES["principal_onboarding"].open(job.attributes, cipher(ws.settings))
        assert opened == expected  # the form gave exactly the example's attributes
        again = submit(client, "/console/jobs/new/principal_onboarding", **values, idempotency_key="k-1")
        assert again.headers["location"] == f"/console/jobs/{job.id}"
        assert "already holds this idempotency key" in text_of(client.get(again.headers["location"]).text)

        r = submit(client, f"/console/jobs/{job.id}/approve")  # four eyes: alice created it
        assert r.status_code == 403
        assert f"job {job.id}: approver 'alice' created it; another person must approve" in text_of(r.text)


def test_form_only_errors_json_dates_and_prerequisites(ws):
    with console_client(ws, "ops", "alice") as client:
        r = submit(client, "/console/jobs/new/distributor_onboarding", programs="[{oops", expires_at="soon")
        assert r.status_code == 400
        assert "not valid JSON: Expecting property name enclosed in double quotes (line 1, column 3)" in r.text
        assert html.unescape(re.search(r'id="error-expires_at">([^<]+)<', r.text).group(1)).startswith("'soon' is not")
        r = submit(client, "/console/jobs/new/manual", title="Call", depends_on="12, x")
        assert r.status_code == 400 and "'x' is not a job id" in html.unescape(r.text)
        r = submit(client, "/console/jobs/new/manual", title="Call", depends_on="999")
        assert "job 999 does not exist" in re.search(r'id="error-depends_on">([^<]+)<', r.text).group(1)
        r = submit(client, "/console/jobs/new/gift_card_program_creation", program_id="GC-1", name="Gift",
                   principal_ids="P-1\nP-2", **{"pricing.denominations": "500.00\n1000.00", "marketing.headline": ""})
        job = service.list_jobs(ws).jobs[0]
        assert r.status_code == 303 and job.attributes["pricing"]["denominations"] == ["500.00", "1000.00"]
        assert job.attributes["principal_ids"] == ["P-1", "P-2"] and job.attributes["currency"] == "INR"
        r = submit(client, "/console/jobs/new/manual", title="Later", expires_at="2000-01-01T10:00")
        error = re.search(r'id="error-expires_at">([^<]+)<', r.text).group(1)
        assert r.status_code == 400 and error == "2000-01-01T10:00:00+00:00 is not in the future"


def test_analysts_read_but_cannot_act_finance_cannot_read_and_forms_need_csrf(ws):
    job = onboarding(ws)
    with console_client(ws, "analyst", "ann") as client:
        assert listed(client)[0] == [job.id]
        page = client.get(f"/console/jobs/{job.id}")
        assert page.status_code == 200 and f"/console/jobs/{job.id}/approve" not in page.text
        r = submit(client, f"/console/jobs/{job.id}/approve")
        assert r.status_code == 403 and "only ops act" in text_of(r.text)
        assert client.get("/console/jobs/new/manual").status_code == 403
        assert submit(client, "/console/jobs/new/manual", title="x").status_code == 403
    with console_client(ws, "finance", "fiona") as client:
        r = client.get("/console/jobs")
        assert r.status_code == 403 and "'finance' does not read jobs" in text_of(r.text)
        assert client.get(f"/console/jobs/{job.id}").status_code == 403
    with console_client(ws, "ops", "bob") as client:
        r = submit(client, f"/console/jobs/{job.id}/approve", token="")
        assert r.status_code == 403 and "csrf" in r.text
        assert submit(client, "/console/jobs/new/manual", token="", title="x").status_code == 403
    assert service.get_job(ws, job.id).state == State.AWAITING_APPROVAL
    assert [j.id for j in service.list_jobs(ws).jobs] == [job.id]
