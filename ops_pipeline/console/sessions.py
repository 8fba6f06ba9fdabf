"""Console sign-in, as plain functions over the operational DB: one-time login links, sessions opened from a
link or from a bearer JWT, the per-session CSRF token and the one-shot flash message.

Tokens are random (256 bits) and only their SHA-256 is stored. Every sign-in and sign-out is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from ops_pipeline import audit
from ops_pipeline.auth import MAX_SUB, AuthError, Principal, verify_token
from ops_pipeline.db.schema import console_logins, console_sessions
from ops_pipeline.errors import InvalidInput, OpsError
from ops_pipeline.workspace import Workspace

CONSOLE_ROLES = ("ops", "finance", "analyst")  # people; merchants, partners and services have no console
LINK_TTL = timedelta(minutes=10)
SESSION_TTL = timedelta(hours=8)


class NoConsole(OpsError):
    code = "FORBIDDEN"
    http_status = 403


@dataclass(frozen=True)
class Session:
    sub: str
    role: str
    csrf: str
    expires_at: datetime
    flash: str | None = None

    @property
    def can_act(self) -> bool:
        """Only ops change things from the console; finance and analysts read."""
        return self.role == "ops"

    def seconds_left(self) -> int:
        return max(1, int((self.expires_at - datetime.now(UTC)).total_seconds()))

    def csrf_ok(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(sent, self.csrf)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_person(role: str, sub: str) -> None:
    if role not in CONSOLE_ROLES:
        raise NoConsole(f"role: {role!r} has no console; it is for {', '.join(CONSOLE_ROLES)}")
    if not sub.strip() or len(sub) > MAX_SUB:
        raise InvalidInput(f"sub: {sub[:40]!r} must be 1 to {MAX_SUB} characters")


def issue_link(ws: Workspace, role: str, sub: str, actor: str) -> str:
    """A one-time login token for `sub` with `role`, valid for LINK_TTL; the caller prints it as a URL."""
    _check_person(role, sub)
    token, now = secrets.token_urlsafe(32), datetime.now(UTC)
    with ws.engine.begin() as conn:
        conn.execute(insert(console_logins).values(
            token_hash=_hash(token), sub=sub, role=role, created_by=actor, created_at=now,
            expires_at=now + LINK_TTL))
        audit.record(conn, actor=actor, entity_type="console_login", entity_id=sub, action="link_issued",
                     after={"role": role, "expires_at": now + LINK_TTL})
    return token


def redeem_link(ws: Workspace, token: str) -> tuple[str, Session]:
    """Open a session from a one-time link (used up by this call): the session cookie and the session."""
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        used = conn.execute(
            update(console_logins)
            .where(console_logins.c.token_hash == _hash(token), console_logins.c.used_at.is_(None),
                   console_logins.c.expires_at > now)
            .values(used_at=now)
            .returning(console_logins.c.sub, console_logins.c.role)
        ).first()
        if used is None:
            raise AuthError("link: unknown, already used or expired; "
                            "ask for a new one (ops-pipeline console-login)")
        return _open(conn, Principal(sub=used.sub, role=used.role), now + SESSION_TTL, "link", now)


def open_with_token(ws: Workspace, bearer: str) -> tuple[str, Session]:
    """Open a session from the identity provider's bearer JWT; it ends when the token does, 8 h at most."""
    principal, expires = verify_token(ws.settings, bearer.strip())
    _check_person(principal.role, principal.sub)
    now = datetime.now(UTC)
    until = min(now + SESSION_TTL, datetime.fromtimestamp(expires, UTC))
    with ws.engine.begin() as conn:
        return _open(conn, principal, until, "token", now)


def _open(conn, principal: Principal, until: datetime, via: str, now: datetime) -> tuple[str, Session]:
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    conn.execute(insert(console_sessions).values(
        token_hash=_hash(cookie), sub=principal.sub, role=principal.role, csrf=csrf, via=via,
        created_at=now, expires_at=until))
    audit.record(conn, actor=principal.sub, entity_type="console_session", entity_id=_hash(cookie)[:16],
                 action="signed_in", after={"role": principal.role, "via": via, "expires_at": until})
    return cookie, Session(sub=principal.sub, role=principal.role, csrf=csrf, expires_at=until)


def lookup(ws: Workspace, cookie: str) -> Session | None:
    """The live session of a cookie, or None; its flash message is handed out once."""
    key = _hash(cookie)
    with ws.read_engine.connect() as conn:
        row = conn.execute(select(console_sessions).where(console_sessions.c.token_hash == key)).first()
    if row is None or row.ended_at is not None or row.expires_at <= datetime.now(UTC):
        return None
    if row.flash is not None:
        with ws.engine.begin() as conn:
            conn.execute(update(console_sessions).where(console_sessions.c.token_hash == key)
                         .values(flash=None))
    return Session(sub=row.sub, role=row.role, csrf=row.csrf, expires_at=row.expires_at, flash=row.flash)


def flash(ws: Workspace, cookie: str, message: str) -> None:
    """Keep the outcome of an action for the next page the session sees."""
    with ws.engine.begin() as conn:
        conn.execute(update(console_sessions).where(console_sessions.c.token_hash == _hash(cookie))
                     .values(flash=message[:500]))


def sign_out(ws: Workspace, cookie: str) -> None:
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        ended = conn.execute(
            update(console_sessions)
            .where(console_sessions.c.token_hash == _hash(cookie), console_sessions.c.ended_at.is_(None))
            .values(ended_at=now).returning(console_sessions.c.sub)
        ).first()
        if ended is not None:
            audit.record(conn, actor=ended.sub, entity_type="console_session", entity_id=_hash(cookie)[:16],
                         action="signed_out")
