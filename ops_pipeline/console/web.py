"""The console's web layer: templates, the session cookie, CSRF-checked forms and errors as pages.

Each page module under `pages/` has a `router`; its routes use `ConsoleRoute`, so a domain error (400, 403,
404, 409) or a bad parameter becomes an HTML page naming the field, and a missing session sends a browser to
the sign-in page. Reading routes take `Viewer`; routes that change something take `Acting` (an ops session,
the form's CSRF token checked) and answer with `done(...)`: a 303 back to a page that shows the outcome once.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from ops_pipeline.api.deps import run_domain
from ops_pipeline.api.errors import describe
from ops_pipeline.console import sessions
from ops_pipeline.console.sessions import Session
from ops_pipeline.errors import InvalidInput, OpsError
from ops_pipeline.money import to_major
from ops_pipeline.workspace import Workspace

PREFIX = "/console"
COOKIE = "ops_console"
FORM = "application/x-www-form-urlencoded"
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
NAV = (("Overview", "/"), ("Jobs", "/jobs"), ("Tickets", "/tickets"), ("Fund-out", "/fundout"),
       ("Disbursements", "/disbursements"), ("Ledger", "/ledger"), ("Recon", "/recon"),
       ("Reports", "/reports"), ("Gift cards", "/giftcards"), ("Invoices", "/invoices"),
       ("Obligations", "/obligations"), ("Alerts", "/alerts"))


def money(minor: int | None, currency: str) -> str:
    """Minor units as exact major units with the currency's decimals: 123456, 'INR' -> '1,234.56 INR'."""
    return "" if minor is None else f"{to_major(int(minor), currency):,} {currency}"


templates.env.filters["money"] = money


class SignInRequired(Exception):
    """No live session: a browser goes to the sign-in page."""


class Refused(OpsError):
    code = "FORBIDDEN"
    http_status = 403


def _ws(request: Request) -> Workspace:
    return request.app.state.ws


async def viewer(request: Request) -> Session:
    """The signed-in person (any console role); SignInRequired without a live session."""
    cookie = request.cookies.get(COOKIE)
    session = await run_domain(request, sessions.lookup, _ws(request), cookie) if cookie else None
    if session is None:
        raise SignInRequired
    request.state.session = session
    return session


Viewer = Annotated[Session, Depends(viewer)]


@dataclass(frozen=True)
class Posted:
    """A checked form: who sent it and its fields (the last value of each name)."""

    session: Session
    fields: dict[str, str]

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default).strip()

    @property
    def actor(self) -> str:
        return self.session.sub


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body as a dict (the guard has already bounded its size)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if body and media != FORM:
        raise Refused(f"Content-Type: {media!r}; console forms are {FORM}")
    fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    for name, value in fields.items():
        if "\x00" in name + value:
            raise InvalidInput(f"{name[:40]!r}: contains a NUL character (U+0000), which no field takes")
    return fields


async def posted(request: Request, session: Viewer) -> Posted:
    """Any signed-in person's form, with its CSRF token checked."""
    fields = await read_form(request)
    if not session.csrf_ok(fields.pop("csrf", None)):
        raise Refused("csrf: the form's token is missing or stale; reload the page and try again")
    return Posted(session=session, fields=fields)


async def acting(request: Request, form: Annotated[Posted, Depends(posted)]) -> Posted:
    """A form that changes something: ops only (finance and analysts read)."""
    if not form.session.can_act:
        raise Refused(f"role: {form.session.role!r} reads the console; only ops act")
    return form


Acting = Annotated[Posted, Depends(acting)]


def readers(area: str, *roles: str) -> Callable[..., Coroutine[Any, Any, Session]]:
    """A dependency admitting the signed-in people whose role reads `area` (as the REST API's reads do)."""

    async def reader(session: Viewer) -> Session:
        if session.role not in roles:
            raise Refused(f"role: {session.role!r} does not read {area}; {', '.join(roles)} do")
        return session

    return reader


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page in the console's frame (navigation, who is signed in, the flash message, the CSRF token)."""
    ws = _ws(request)
    base = {"session": getattr(request.state, "session", None), "nav": NAV, "prefix": PREFIX,
            "dagster_url": ws.settings.dagster_url, "path": request.url.path}
    return templates.TemplateResponse(request, template, {**base, **context}, status_code=status)


def url(path: str, **query: Any) -> str:
    """A console URL: url('/jobs', state='Failed') -> '/console/jobs?state=Failed' (empty values left out)."""
    params = "&".join(f"{k}={quote(str(v))}" for k, v in query.items() if v not in (None, ""))
    return f"{PREFIX}{path}" + (f"?{params}" if params else "")


async def done(request: Request, message: str, to: str) -> RedirectResponse:
    """After an action: the outcome is shown once on the page `to` (a console path) that the browser gets."""
    await run_domain(request, sessions.flash, _ws(request), request.cookies[COOKIE], message)
    return RedirectResponse(url(to), status_code=303)


def _same_origin(request: Request) -> None:
    """A form posted from another site is refused (with SameSite cookies and the CSRF token: a third guard,
    and the one that covers sign-in forms, which have no session yet)."""
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        raise Refused(f"Origin: {origin[:80]!r} is not this console's")


class ConsoleRoute(APIRoute):
    """Errors as pages: sign-in redirects, domain errors and bad parameters with their status and message."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                if request.method == "POST":
                    _same_origin(request)
                return await handler(request)
            except SignInRequired:
                if request.method == "GET":
                    return RedirectResponse(url("/login", next=request.url.path), status_code=303)
                return render(request, "error.html", 401, message="Your session has ended: sign in again.")
            except OpsError as exc:
                return render(request, "error.html", exc.http_status, message=str(exc))
            except RequestValidationError as exc:
                message = "; ".join(describe(e) for e in exc.errors())
                return render(request, "error.html", 400, message=message)

        return route


def page_router() -> APIRouter:
    """A router for one page module: errors as pages, nothing in the REST API's OpenAPI document."""
    return APIRouter(route_class=ConsoleRoute, include_in_schema=False)
