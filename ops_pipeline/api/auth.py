"""Bearer-token authentication and role checks, as FastAPI dependencies every router reuses.

    readers = require_roles("ops", "finance", "internal", merchant_self="merchant_id")
    @router.get("/api/balances/{merchant_id}", dependencies=[Depends(readers)])

Missing, invalid or expired token -> 401; a role not allowed -> 403; a `merchant` token passes only
when the path parameter named by `merchant_self` is its own business id (`sub`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ops_pipeline.auth import ROLES, AuthError, Principal, verify_token
from ops_pipeline.errors import OpsError
from ops_pipeline.observability import logs
from ops_pipeline.settings import Settings

bearer = HTTPBearer(
    auto_error=False,
    description="JWT with claims `sub`, `role` and `exp`; mint one locally with `ops-pipeline token`.",
)


class Forbidden(OpsError):
    code = "FORBIDDEN"
    http_status = 403


class TokenVerifier:
    """`verify_token` with a bounded memory of tokens already verified; expiry is checked on every use.

    Clients send the same token with each request, and a full verification costs about 0.1 ms (PyJWT
    re-inspects the key on every decode), a tenth of a whole balance request.
    """

    def __init__(self, settings: Settings, size: int = 10_000):
        self.settings, self.size = settings, size
        self._verified: dict[str, tuple[Principal, float]] = {}

    def __call__(self, token: str) -> Principal:
        hit = self._verified.get(token)
        if hit is not None and time.time() < hit[1]:
            return hit[0]
        principal, expires = verify_token(self.settings, token)  # raises AuthError, e.g. once expired
        if len(self._verified) >= self.size:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The caller, from a valid `Authorization: Bearer <JWT>` header; AuthError (401) otherwise."""
    if credentials is None:
        raise AuthError("Authorization: a bearer token is required")
    principal = request.app.state.verify_token(credentials.credentials)
    logs.add(actor=principal.sub)  # on the request's log lines (the `bind` of its correlation id)
    return principal


def require_roles(*roles: str, merchant_self: str | None = None) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting `roles`, plus a merchant whose `sub` equals path parameter `merchant_self`."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"roles: {unknown or 'none given'} (known: {', '.join(ROLES)})")
    allowed = frozenset(roles)
    shown = ", ".join(roles) + (" or the merchant itself" if merchant_self else "")

    async def authorized(
        request: Request, principal: Annotated[Principal, Depends(authenticate)]
    ) -> Principal:
        if principal.role in allowed:
            return principal
        if merchant_self and principal.role == "merchant":
            if request.path_params.get(merchant_self) == principal.sub:
                return principal
            raise Forbidden(f"{merchant_self}: a merchant token reaches only its own business")
        raise Forbidden(f"role: {principal.role!r} may not do this; allowed: {shown}")

    return authorized
