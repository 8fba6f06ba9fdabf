"""Signing in and out: a one-time link from `ops-pipeline console-login`, or a bearer JWT from the identity
provider (pasted, or sent by a proxy in `Authorization`), exchanged for a session cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from ops_pipeline.console import sessions
from ops_pipeline.console.web import (
    COOKIE,
    PREFIX,
    Posted,
    page_router,
    posted,
    read_form,
    render,
    run_domain,
    url,
)

router = page_router()


def _signed_in(request: Request, cookie: str, session: sessions.Session, to: str) -> Response:
    response = RedirectResponse(_local(to), status_code=303)
    response.set_cookie(COOKIE, cookie, max_age=session.seconds_left(), path=PREFIX, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")
    return response


def _local(to: str | None) -> str:
    """Only a console path is followed after sign-in (no open redirect)."""
    return to if to and to.startswith(f"{PREFIX}/") and not to.startswith(f"{PREFIX}//") else url("/")


@router.get("/login")
async def login_page(request: Request, next: str = "") -> Response:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        ws = request.app.state.ws
        cookie, session = await run_domain(request, sessions.open_with_token, ws, header[7:])
        return _signed_in(request, cookie, session, next)
    return render(request, "login.html", next=_local(next))


@router.post("/login")
async def login_with_token(request: Request) -> Response:
    fields = await read_form(request)
    cookie, session = await run_domain(request, sessions.open_with_token, request.app.state.ws,
                                       fields.get("token", ""))
    return _signed_in(request, cookie, session, fields.get("next", ""))


@router.get("/login/{token}")
async def link_page(request: Request, token: str) -> Response:
    """A confirmation page: a link preview or prefetch (a GET) does not use the one-time link up."""
    return render(request, "link.html", token=token)


@router.post("/login/{token}")
async def redeem_link(request: Request, token: str) -> Response:
    cookie, session = await run_domain(request, sessions.redeem_link, request.app.state.ws, token)
    return _signed_in(request, cookie, session, "")


@router.post("/logout")
async def logout(request: Request, form: Annotated[Posted, Depends(posted)]) -> Response:
    await run_domain(request, sessions.sign_out, request.app.state.ws, request.cookies[COOKIE])
    response = RedirectResponse(url("/login"), status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response
