"""Financial addresses (FA) as the mapper answers them, parsed into typed fields and sealed at rest.

`bank_<account>_<bank>_<branch>_<type>`, `mobile_<number>_<provider>`, `email_<address>_<provider>`
(OpenG2P's example mapper format). The account number, mobile number or e-mail address is encrypted
(`crypto.Cipher.seal`, like UPI VPAs); the bank, branch, account type and provider are kept in clear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ops_pipeline.crypto import Cipher, mask_tail

BANK_ACCOUNT, MOBILE_WALLET, EMAIL_WALLET = "BANK_ACCOUNT", "MOBILE_WALLET", "EMAIL_WALLET"
_PATTERNS = {
    BANK_ACCOUNT: re.compile(
        r"bank_(?P<address>[0-9A-Za-z]{4,34})_(?P<bank_code>[0-9A-Za-z]{2,64})"
        r"_(?P<branch_code>[0-9A-Za-z]{1,64})_(?P<account_type>[A-Za-z]{1,32})"
    ),
    MOBILE_WALLET: re.compile(r"mobile_(?P<address>\+?[0-9]{6,15})_(?P<provider>[0-9A-Za-z-]{1,64})"),
    EMAIL_WALLET: re.compile(
        r"email_(?P<address>[^_@\s]+@[^_@\s]+\.[^_@\s]+)_(?P<provider>[0-9A-Za-z-]{1,64})"
    ),
}


class UnparsableAddress(ValueError):
    """The mapper answered an FA in none of the known forms."""


@dataclass(frozen=True)
class FinancialAddress:
    fa_type: str
    address: str  # the account number, mobile number or e-mail address (secret)
    bank_code: str | None = None
    branch_code: str | None = None
    account_type: str | None = None
    provider: str | None = None

    @property
    def masked(self) -> str:
        if self.fa_type == EMAIL_WALLET:
            handle, _, domain = self.address.partition("@")
            return f"{handle[:2]}***@{domain}"
        return mask_tail(self.address)


def parse(fa: object) -> FinancialAddress:
    """The typed fields of an FA string; `UnparsableAddress` naming the value's form if it has none."""
    text = fa if isinstance(fa, str) else ""
    for fa_type, pattern in _PATTERNS.items():
        if m := pattern.fullmatch(text):
            return FinancialAddress(fa_type, **m.groupdict())
    kind = text.partition("_")[0] if text else type(fa).__name__
    raise UnparsableAddress(
        f"fa: a {kind!r} address is not bank_..., mobile_... or email_... in the known form"
    )


def row(disbursement_id: str, beneficiary_id: str, fa: FinancialAddress, name: str | None, cipher: Cipher,
        now: datetime) -> dict:
    """The `g2p_financial_addresses` row: the address sealed, the rest in clear."""
    return {
        "disbursement_id": disbursement_id,
        "beneficiary_id": beneficiary_id,
        "fa_type": fa.fa_type,
        "address": cipher.seal(fa.address, fa.masked),
        "bank_code": fa.bank_code,
        "branch_code": fa.branch_code,
        "account_type": fa.account_type,
        "provider": fa.provider,
        "resolved_name": name,
        "resolved_at": now,
    }


def opened(stored, cipher: Cipher) -> FinancialAddress:
    """A stored row back as a `FinancialAddress` (the address decrypted), to pay it."""
    return FinancialAddress(stored.fa_type, cipher.open(stored.address), stored.bank_code, stored.branch_code,
                            stored.account_type, stored.provider)
