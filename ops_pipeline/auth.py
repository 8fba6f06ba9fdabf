"""JWT tokens: HS256 with the workspace secret, or RS256 verification with `OPS_JWT_PUBLIC_KEY`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from ops_pipeline.errors import InvalidInput, OpsError
from ops_pipeline.settings import Settings

ROLES = ("ops", "finance", "analyst", "internal", "merchant", "partner")


class AuthError(OpsError):
    code = "UNAUTHORIZED"
    http_status = 401


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str


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


def verify_token(settings: Settings, token: str) -> Principal:
    """Decode and check signature, expiry and claims; raise AuthError otherwise."""
    if settings.jwt_public_key:
        key, algorithms = settings.jwt_public_key, ["RS256"]
    else:
        key, algorithms = settings.jwt_secret, ["HS256"]
    try:
        claims = jwt.decode(token, key, algorithms=algorithms, options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("token: expired") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"token: invalid ({exc})") from None
    role = claims.get("role")
    if role not in ROLES:
        raise AuthError(f"token: role {role!r} is not one of {', '.join(ROLES)}")
    return Principal(sub=str(claims["sub"]), role=role)
