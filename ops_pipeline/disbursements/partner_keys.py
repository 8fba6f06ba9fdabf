"""Partners' public keys, and the detached JWS (RFC 7797, `b64: false`) that signs each request body.

A partner signs the exact bytes of the body with its private key (RS256 or ES256) and sends the compact
serialization without the payload, `<protected header>..<signature>`, in the `Signature` header; it is
verified against the partner's active registered keys (the protected header's `kid`, if present, must be
the key's fingerprint).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import insert, select

from ops_pipeline import audit
from ops_pipeline.db.schema import g2p_partner_keys
from ops_pipeline.errors import Conflict, InvalidInput, OpsError
from ops_pipeline.workspace import Workspace

ALGORITHMS = ("RS256", "ES256")
MAX_SIGNATURE_CHARS = 4096


class SignatureRefused(OpsError):
    """The body is unsigned, or its signature does not verify with any key of the partner (HTTP 401)."""

    code = "INVALID_SIGNATURE"
    http_status = 401


@dataclass(frozen=True)
class PartnerKey:
    id: int
    partner: str
    alg: str
    fingerprint: str
    active: bool
    created_at: datetime


def add_key(ws: Workspace, partner: str, alg: str, pem: bytes, actor: str) -> PartnerKey:
    """Register a public key (PEM) of `partner` (its bearer token's `sub`) for `alg`."""
    partner = (partner or "").strip()
    if not partner or len(partner) > 128:
        raise InvalidInput(f"partner: {partner!r} must be a non-empty text of at most 128 characters")
    if alg not in ALGORITHMS:
        raise InvalidInput(f"alg: {alg!r} is not one of {', '.join(ALGORITHMS)}")
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise InvalidInput("pem: not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
    if alg == "RS256" and not (isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048):
        raise InvalidInput("pem: RS256 needs an RSA public key of at least 2048 bits")
    if alg == "ES256" and not (isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"):
        raise InvalidInput("pem: ES256 needs an EC public key on P-256")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    fingerprint = hashlib.sha256(der).hexdigest()
    text = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        taken = conn.execute(
            select(g2p_partner_keys.c.id).where(
                g2p_partner_keys.c.partner == partner, g2p_partner_keys.c.fingerprint == fingerprint
            )
        ).first()
        if taken is not None:
            raise Conflict(f"pem: this key is already registered for partner {partner!r}")
        key_id = conn.execute(
            insert(g2p_partner_keys)
            .values(
                partner=partner,
                alg=alg,
                public_key_pem=text,
                fingerprint=fingerprint,
                active=True,
                created_by=actor,
                created_at=now,
            )
            .returning(g2p_partner_keys.c.id)
        ).scalar_one()
        audit.record(
            conn,
            actor=actor,
            entity_type="g2p_partner_key",
            entity_id=str(key_id),
            action="create",
            after={"partner": partner, "alg": alg, "fingerprint": fingerprint},
        )
    return PartnerKey(key_id, partner, alg, fingerprint, True, now)


def list_keys(ws: Workspace, partner: str | None = None) -> list[PartnerKey]:
    c = g2p_partner_keys.c
    query = select(c.id, c.partner, c.alg, c.fingerprint, c.active, c.created_at).order_by(c.partner, c.id)
    if partner:
        query = query.where(c.partner == partner)
    with ws.read_engine.connect() as conn:
        return [PartnerKey(*row) for row in conn.execute(query)]


def verify_body(ws: Workspace, partner: str, signature: str | None, body: bytes) -> None:
    """Raise SignatureRefused unless `signature` is a detached JWS of `body` by a key of `partner`."""
    if not signature:
        raise SignatureRefused("Signature: a detached JWS of the body is required", "SIGNATURE_REQUIRED")
    if len(signature) > MAX_SIGNATURE_CHARS or signature.count(".") != 2 or signature.split(".")[1]:
        raise SignatureRefused("Signature: not a detached compact JWS (<header>..<signature>)")
    try:
        header = jwt.get_unverified_header(signature)
    except jwt.PyJWTError:
        raise SignatureRefused("Signature: its protected header is not valid") from None
    c = g2p_partner_keys.c
    with ws.read_engine.connect() as conn:
        keys = conn.execute(
            select(c.alg, c.public_key_pem, c.fingerprint).where(c.partner == partner, c.active.is_(True))
        ).all()
    kid = header.get("kid")
    for alg, pem, fingerprint in keys:
        if alg != header.get("alg") or (kid is not None and kid != fingerprint):
            continue
        try:
            jwt.api_jws.decode_complete(signature, _public_key(pem), algorithms=[alg], detached_payload=body)
        except jwt.PyJWTError:
            continue
        return
    raise SignatureRefused(
        f"Signature: does not verify with any {header.get('alg')!s:.10} key of partner {partner!r}"
    )


@lru_cache(maxsize=256)
def _public_key(pem: str):
    return serialization.load_pem_public_key(pem.encode())
