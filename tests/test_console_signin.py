"""Console sign-in and the overview on SQLite and PostgreSQL: one-time links, bearer tokens, roles, the
session cookie, CSRF and origin checks, sign-out, audit; and the overview's figures."""

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from ops_pipeline.api.app import create_app
from ops_pipeline.auth import mint_token
from ops_pipeline.console import sessions
from ops_pipeline.db.schema import audit_log, console_logins, console_sessions
from ops_pipeline.jobqueue import service
from tests.console import console_client, csrf, sign_in, submit, text_of


def app_client(ws):
    return TestClient(create_app(ws.settings), follow_redirects=False)


def test_a_one_time_link_signs_in_once_and_sets_a_strict_cookie(ws):
    with app_client(ws) as client:
        assert client.get("/console/").headers["location"] == "/console/login?next=/console/"
        token = sessions.issue_link(ws, "ops", "alice", actor="test")
        assert "Continue" in client.get(f"/console/login/{token}").text  # a GET does not use the link
        r = client.post(f"/console/login/{token}")
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
        page = client.get("/console/")
        assert page.status_code == 200 and "alice" in page.text and "Overview" in page.text
        with app_client(ws) as other:
            again = other.post(f"/console/login/{token}")
        assert again.status_code == 401 and "already used" in again.text
    with ws.engine.connect() as conn:
        actions = [r.action for r in conn.execute(select(audit_log).where(audit_log.c.actor == "alice"))]
    assert actions == ["signed_in"]


def test_an_expired_link_is_refused(ws):
    token = sessions.issue_link(ws, "ops", "bob", actor="test")
    with ws.engine.begin() as conn:
        conn.execute(update(console_logins).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    with app_client(ws) as client:
        r = client.post(f"/console/login/{token}")
    assert r.status_code == 401 and "expired" in r.text


def test_a_bearer_token_signs_in_people_but_not_merchants_or_services(ws):
    with app_client(ws) as client:
        r = client.post("/console/login", data={"token": mint_token(ws.settings, "finance", "fiona"),
                                                "next": "/console/jobs"})
        assert r.status_code == 303 and r.headers["location"] == "/console/jobs"
        header = {"Authorization": f"Bearer {mint_token(ws.settings, 'analyst', 'ann')}"}
        assert client.get("/console/login", headers=header).status_code == 303
        for role in ("merchant", "partner", "internal"):
            r = client.post("/console/login", data={"token": mint_token(ws.settings, role, "m1")})
            assert r.status_code == 403 and "has no console" in r.text, role
        r = client.post("/console/login", data={"token": "not.a.jwt"})
        assert r.status_code == 401 and "token: invalid" in text_of(r.text)
        r = client.post("/console/login", data={"token": mint_token(ws.settings, "ops", "o"), "next": "//evil"})
        assert r.headers["location"] == "/console/"  # no open redirect


def test_forms_need_the_sessions_csrf_token_and_this_origin(ws):
    with console_client(ws) as client:
        assert submit(client, "/console/logout", token="").status_code == 403
        assert "csrf" in submit(client, "/console/logout", token="forged").text
        token = csrf(client)
        r = client.post("/console/logout", data={"csrf": token}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "Origin" in text_of(r.text)
        r = client.post("/console/logout", data={"csrf": token}, headers={"Origin": "http://testserver"})
        assert r.status_code == 303
        assert client.get("/console/").status_code == 303  # signed out: back to sign-in


def test_forms_are_urlencoded_only_and_nul_is_refused(ws):
    with console_client(ws) as client:
        token = csrf(client)
        r = client.post("/console/logout", content=b'{"csrf": "x"}', headers={"Content-Type": "application/json"})
        assert r.status_code == 403 and "console forms are" in text_of(r.text)
        r = client.post("/console/logout", data={"csrf": token, "reason": "a\x00b"})
        assert r.status_code == 400 and "NUL" in r.text


def test_read_roles_cannot_act(ws):
    job, _ = service.create_job(ws, actor="alice", type="manual", attributes={"title": "a"})
    with console_client(ws, role="analyst", sub="ann") as client:
        r = client.get("/console/")
        assert r.status_code == 200 and "analyst" in r.text
        assert sessions.Session("ann", "analyst", "x", datetime.now(UTC)).can_act is False
        refused = submit(client, f"/console/jobs/{job.id}/cancel", reason="not mine")
        assert refused.status_code == 403 and "only ops act" in text_of(refused.text)
    assert service.get_job(ws, job.id).state == "Created"


def test_overview_counts_jobs_tickets_and_the_replay_check(ws):
    for title in ("a", "b"):
        service.create_job(ws, actor="alice", type="manual", attributes={"title": title}, priority="High")
    from ops_pipeline.ledger import snapshots

    snapshots.check_replay(ws)
    with console_client(ws) as client:
        page = text_of(client.get("/console/").text)
        missing = client.get("/console/nope")
    assert "Type Created manual 2" in page
    assert "equal replay check" in page
    assert missing.status_code == 404 and "is not a console page" in missing.text


def test_console_login_cli_prints_a_link_that_works(ws, tmp_path):
    from tests.servers import environment, run

    out = run(environment(ws), "console-login", "--role", "ops", "--sub", "carol").stdout.strip()
    assert out.startswith("http://127.0.0.1:8000/console/login/")
    with app_client(ws) as client:
        assert client.post(out.removeprefix("http://127.0.0.1:8000")).status_code == 303
    err = __import__("subprocess").run([__import__("tests.servers", fromlist=["CLI"]).CLI, "console-login",
                                        "--role", "merchant", "--sub", "m"], env=environment(ws),
                                       capture_output=True, text=True)
    assert err.returncode == 1 and "has no console" in err.stderr


def test_sign_in_twice_gives_two_sessions(ws):
    with console_client(ws) as client:
        sign_in(client, ws, "ops", "alice")
        assert client.get("/console/").status_code == 200
    with ws.engine.connect() as conn:
        subs = conn.execute(select(console_sessions.c.sub)).scalars().all()
    assert subs == ["alice", "alice"]
