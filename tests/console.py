"""Helpers for console tests: a signed-in HTTP client (TestClient, the app in-process), forms with their CSRF
token, and a real browser (Playwright driving the system Chromium) against `ops-pipeline api` on 127.0.0.1.

Browser tests fail, never skip, when Chromium is missing: `.ci/run` installs Debian's `chromium`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from pathlib import Path

from fastapi.testclient import TestClient

from ops_pipeline.api.app import create_app
from ops_pipeline.console import sessions
from ops_pipeline.workspace import Workspace

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"  # gitignored; a few are copied to docs/
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@contextmanager
def console_client(ws: Workspace, role: str = "ops", sub: str = "alice") -> Iterator[TestClient]:
    """A TestClient of the API app signed in to the console as `sub` with `role` (by a one-time link)."""
    with TestClient(create_app(ws.settings), base_url="http://testserver", follow_redirects=False) as client:
        sign_in(client, ws, role, sub)
        yield client


def sign_in(client: TestClient, ws: Workspace, role: str, sub: str) -> None:
    token = sessions.issue_link(ws, role, sub, actor="test")
    r = client.post(f"/console/login/{token}")
    assert r.status_code == 303 and r.headers["location"] == "/console/", r.text


def csrf(client: TestClient, page: str = "/console/") -> str:
    """The session's CSRF token, as a page's forms carry it."""
    r = client.get(page)
    assert r.status_code == 200, r.text
    return _CSRF.search(r.text).group(1)


def submit(client: TestClient, path: str, token: str | None = None, **fields: str):
    """POST a console form (urlencoded, with the CSRF token unless `token` is given as '')."""
    data = {"csrf": csrf(client) if token is None else token, **fields}
    return client.post(path, data={k: v for k, v in data.items() if v is not None})


def text_of(html: str) -> str:
    """A page's text without tags, entities decoded and whitespace collapsed: what a person reads."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def next_link(html: str) -> str | None:
    """The href of a page's "Next page" link (`rel="next"`), entities decoded; None on the last page."""
    found = re.search(r'href="([^"]+)" rel="next"', html)
    return unescape(found.group(1)) if found else None


@contextmanager
def browser() -> Iterator:
    """A headless Chromium (the system's) driven by Playwright."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()


def browser_sign_in(chromium, base_url: str, ws: Workspace, role: str = "ops", sub: str = "alice"):
    """A new browser context (its own cookies) signed in through the one-time link page; its page."""
    context = chromium.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"/console/login/{sessions.issue_link(ws, role, sub, actor='test')}")
    page.click("#continue")
    page.wait_for_url("**/console/")
    return page


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
