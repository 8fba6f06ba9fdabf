"""JWT tokens: HS256 with the workspace secret, or RS256 verification with `OPS_JWT_PUBLIC_KEY`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from ops_pipeline.errors import InvalidInput, OpsError
from ops_pipeline.settings import Settings

ROLES = ("ops", "finance", "analyst", "internal", "merchant", "partner")
MAX_SUB = 128  # characters: `sub` is recorded as the actor
TIMES = ("exp", "iat", "nbf")  # NumericDate claims: seconds since the epoch
MAX_TIME = 2**53  # seconds: ~285 million years, exact as a float


class AuthError(OpsError):
    code = "UNAUTHORIZED"
    http_status = 401


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str

    @property
    def actor(self) -> str:
        """Who, as audit records name a caller: `role:sub`."""
        return f"{self.role}:{self.sub}"


def mint_token(settings: Settings, role: str, sub: str, ttl_seconds: int = 3600) -> str:
    """A signed HS256 token for local use (ops tools, tests, the demo)."""
    if role not in ROLES:
        raise InvalidInput(f"role: {role!r} is not one of {', '.join(ROLES)}")
    if not sub:
        raise InvalidInput("sub: value is missing")
    if ttl_seconds <= 0:
        raise InvalidInput(f"ttl: {ttl_seconds} must be positive")
    now = datetime.now(UTC)
    claims = {"sub": sub, "role": role, "iat": now, "exp": now + timedelta(seconds=ttl_seconds)}
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def verify_token(settings: Settings, token: str) -> tuple[Principal, float]:
    """The principal and the token's expiry (seconds since the epoch); AuthError naming the claim otherwise.

    PyJWT checks the signature and that `exp` and `sub` are present; the claims' types and times are checked
    here, so that a string or an infinite `exp` is refused like an expired one, not compared later.
    """
    if settings.jwt_public_key:
        key, algorithms = settings.jwt_public_key, ["RS256"]
    else:
        key, algorithms = settings.jwt_secret, ["HS256"]
    options = {"require": ["exp", "sub"]} | {f"verify_{name}": False for name in TIMES}
    try:
        claims = jwt.decode(token, key, algorithms=algorithms, options=options)
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"token: invalid ({exc})") from None
    for name in TIMES:
        if name in claims and not _is_time(claims[name]):
            raise AuthError(f"token: claim {name!r} is not a number of seconds: {_short(claims[name])}")
    now = time.time()
    if claims["exp"] <= now:
        raise AuthError("token: expired")
    if max(claims.get("iat", now), claims.get("nbf", now)) > now:
        raise AuthError("token: not valid yet (iat or nbf is in the future)")
    sub, role = claims["sub"], claims.get("role")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_SUB:
        raise AuthError(f"token: claim 'sub' is not a string of 1 to {MAX_SUB} characters: {_short(sub)}")
    if role not in ROLES:
        raise AuthError(f"token: role {_short(role)} is not one of {', '.join(ROLES)}")
    return Principal(sub=sub, role=role), float(claims["exp"])


def _is_time(value: Any) -> bool:
    """A number of seconds, finite and within float precision (a huge int would not convert to float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return -MAX_TIME <= value <= MAX_TIME  # False for nan and infinities


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else f"{shown[:40]}..."
