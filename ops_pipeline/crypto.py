"""Secrets at rest: Fernet encryption of single values (UPI VPAs, bank details) and their masked forms.

A sealed value is stored as `{"enc": "<fernet token>", "masked": "ab***@upi"}`: only the key opens it, and
views (API, CLI) show the masked form without needing the key.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from ops_pipeline.errors import OpsError
from ops_pipeline.settings import Settings


class DecryptionFailed(OpsError):
    code = "DECRYPTION_FAILED"
    http_status = 500


class Cipher:
    """Encrypts and decrypts strings with one Fernet key (authenticated: a tampered token is refused)."""

    def __init__(self, key: str):
        self._fernet = Fernet(key.encode())

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise DecryptionFailed("a sealed value does not open with this encryption key") from None

    def seal(self, plaintext: str, masked: str) -> dict[str, str]:
        return {"enc": self.encrypt(plaintext), "masked": masked}

    def open(self, sealed: dict[str, str]) -> str:
        return self.decrypt(sealed["enc"])


@cache
def _cipher(key: str) -> Cipher:
    return Cipher(key)


def cipher(settings: Settings) -> Cipher:
    """The workspace's cipher (`OPS_ENCRYPTION_KEY`, else the key generated once per `OPS_HOME`)."""
    return _cipher(settings.encryption_key)


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"enc", "masked"}


def mask_vpa(vpa: str) -> str:
    """`abcdef@okbank` -> `ab***@okbank`: the handle hidden, the provider kept."""
    handle, _, provider = vpa.partition("@")
    return f"{handle[:2]}***@{provider}"


def mask_tail(value: str, keep: int = 4) -> str:
    """`123456789012` -> `********9012`."""
    return "*" * max(0, len(value) - keep) + value[-keep:]


def mask_head(value: str, keep: int = 4) -> str:
    """`HDFC0001234` -> `HDFC*******` (a bank code keeps its bank, hides its branch)."""
    return value[:keep] + "*" * max(0, len(value) - keep)
