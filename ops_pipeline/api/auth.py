"""Bearer-token authentication and role checks, as FastAPI dependencies every router reuses.

    readers = require_roles("ops", "finance", "internal", merchant_self="merchant_id")
    @router.get("/api/balances/{merchant_id}", dependencies=[Depends(readers)])

Missing, invalid or expired token -> 401; a role not allowed -> 403; a `merchant` token passes only
when the path parameter named by `merchant_self` is its own business id (`sub`).
"""

from __future__ import annotations

import time

from fastapi import Request
from fastapi.security import HTTPBearer

from ops_pipeline.auth import ROLES, AuthError, Principal, verify_token
from ops_pipeline.errors import OpsError
from ops_pipeline.observability import logs
from ops_pipeline.settings import Settings


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


class RoleCheck(HTTPBearer):
    """The bearer scheme (so OpenAPI shows it) and the role check as one dependency: the caller from a
    valid `Authorization: Bearer <JWT>` header (AuthError, 401, otherwise), admitted by role (Forbidden, 403).

    One node where a bearer, an authenticate and a role dependency were three: FastAPI's dependency
    resolution costs tens of microseconds per node, on every request of every route.
    """

    def __init__(self, roles: frozenset[str], merchant_self: str | None, shown: str):
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=(
            "JWT with claims `sub`, `role` and `exp`; mint one locally with `ops-pipeline token`."))
        self.roles, self.merchant_self, self.shown = roles, merchant_self, shown

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not (token := token.strip()):
            raise AuthError("Authorization: a bearer token is required")
        principal = request.app.state.verify_token(token)
        logs.add(actor=principal.sub)  # on the request's log lines (the `bind` of its correlation id)
        if principal.role in self.roles:
            return principal
        if self.merchant_self and principal.role == "merchant":
            if request.path_params.get(self.merchant_self) == principal.sub:
                return principal
            raise Forbidden(f"{self.merchant_self}: a merchant token reaches only its own business")
        raise Forbidden(f"role: {principal.role!r} may not do this; allowed: {self.shown}")


def require_roles(*roles: str, merchant_self: str | None = None) -> RoleCheck:
    """A dependency admitting `roles`, plus a merchant whose `sub` equals path parameter `merchant_self`."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"roles: {unknown or 'none given'} (known: {', '.join(ROLES)})")
    shown = ", ".join(roles) + (" or the merchant itself" if merchant_self else "")
    return RoleCheck(frozenset(roles), merchant_self, shown)
