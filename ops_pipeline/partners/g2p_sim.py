"""The simulator's G2P side: a SPAR-style ID mapper and a sponsor bank (accounts, fund blocks, bulk payments).

The mapper answers the FA linked to a beneficiary id (linked through `/g2p/mapper/link`; it is a mapper, so
unlike the rest of the simulator it keeps the FA it must answer). The bank keeps per-account balances and
blocks; a payment draws on a block; it fails a configurable share of payments (`fail_share`, 0 by
default), chosen by a hash of the payment's reference so a run is repeatable, with one of `FAILURES` as
the reason; a reference paid before answers its first outcome again (never pays twice). What it paid (and
reversals) make the sponsor account's statement, rendered by `statements.RENDERERS`.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from typing import Any

from ops_pipeline.partners import statements

FAILURES = ("ACCOUNT_CLOSED", "ACCOUNT_NOT_FOUND", "ACCOUNT_DORMANT", "ACCOUNT_DECEASED")
MAX_PAYMENTS = 10_000  # items per bulk payment request
G2P_KINDS = ("g2p_fas", "g2p_accounts", "g2p_blocks", "g2p_payments")


def failure_of(reference: str, share: float) -> str | None:
    """The reason the bank fails the payment with this reference, or None: the same every time."""
    h = int.from_bytes(hashlib.sha256(reference.encode()).digest()[:8], "big")
    return FAILURES[(h >> 32) % len(FAILURES)] if (h % 10_000) < round(share * 10_000) else None


class G2PRoutes:
    """Mixed into `Simulator`: its `_need`, `Refused`, `_minor`, `_next`, `_transaction` do the plumbing."""

    def _g2p_routes(self) -> list:
        R = re.compile
        return [
            ("POST", R(r"/g2p/mapper/link"), self._g2p_link),
            ("POST", R(r"/g2p/mapper/resolve"), self._g2p_resolve),
            ("POST", R(r"/g2p/bank/accounts"), self._g2p_open_account),
            ("POST", R(r"/g2p/bank/check_funds"), self._g2p_check_funds),
            ("POST", R(r"/g2p/bank/block_funds"), self._g2p_block_funds),
            ("POST", R(r"/g2p/bank/payments"), self._g2p_pay),
            ("GET", R(r"/g2p/bank/statements/(?P<fmt>[^/]+)/(?P<account>[^/]+)"), self._g2p_statement),
        ]

    # -- seeding, also over HTTP ---------------------------------------------------------------------------

    def link_fa(self, beneficiary_id: str, fa: str, name: str | None = None) -> None:
        self.handle("POST", "/g2p/mapper/link", {"beneficiary_id": beneficiary_id, "fa": fa, "name": name})

    def link_fas(self, links: dict[str, tuple[str, str | None]]) -> None:
        """Link many beneficiaries at once ({beneficiary id: (fa, name)}): one write of the state."""
        with self._transaction() as st:
            fas = st.setdefault("g2p_fas", {})
            for beneficiary_id, (fa, name) in links.items():
                fas[beneficiary_id] = {"fa": fa, "name": name}

    def open_account(self, account_number: str, currency: str, balance: str) -> None:
        body = {"account_number": account_number, "currency": currency, "balance": balance}
        status, reply = self.handle("POST", "/g2p/bank/accounts", body)
        if status != 201:
            raise ValueError(reply["error"])

    def set_fail_share(self, share: float) -> None:
        """From now on the bank fails this share (0..1) of new payments."""
        with self._transaction() as st:
            st.setdefault("g2p_config", {})["fail_share"] = share

    def reverse_payment(self, reference: str, reason: str = "ACCOUNT_CLOSED") -> None:
        """A paid G2P payment came back: the next statement carries an `RD` line for it."""
        with self._transaction() as st:
            payment = st.setdefault("g2p_payments", {}).get(reference)
            if payment is None or payment["status"] != "paid":
                raise ValueError(f"reference {reference!r} is no paid payment")
            payment.update(status="returned", returned_on=date.today().isoformat(), reason=reason)

    def list_twice(self, reference: str) -> None:
        """The bank's next statements list this paid payment's `D` line twice (a duplicate line)."""
        with self._transaction() as st:
            payment = st.setdefault("g2p_payments", {}).get(reference)
            if payment is None or payment["status"] == "failed":
                raise ValueError(f"reference {reference!r} is no paid payment")
            payment["listed_twice"] = True

    def sponsor_statement(self, account: str, fmt: str = "mt940", booked: date | None = None) -> str:
        """The account's statement: of day `booked` only (payments booked, returns made that day), else of
        everything the bank did on it."""
        with self._transaction(write=False) as st:
            return self._g2p_render(st, account, fmt, booked)

    # -- mapper --------------------------------------------------------------------------------------------

    def _g2p_link(self, st, body: dict[str, Any]) -> tuple[int, dict]:
        beneficiary_id, fa = self._need_g2p(body, "beneficiary_id", "fa")
        st.setdefault("g2p_fas", {})[beneficiary_id] = {"fa": fa, "name": body.get("name")}
        return 201, {"beneficiary_id": beneficiary_id}

    def _g2p_resolve(self, st, body: dict[str, Any]) -> tuple[int, dict]:
        (ids,) = self._need_g2p(body, "beneficiary_ids")
        fas = st.get("g2p_fas", {})
        return 200, {"items": [
            {"beneficiary_id": b, "status": "succ", "fa": fas[b]["fa"], "name": fas[b]["name"]} if b in fas
            else {"beneficiary_id": b, "status": "rjct", "error": "beneficiary id not linked"}
            for b in ids
        ]}

    # -- bank ----------------------------------------------------------------------------------------------

    def _g2p_open_account(self, st, body: dict[str, Any]) -> tuple[int, dict]:
        (number,) = self._need_g2p(body, "account_number")
        minor, currency = self._minor_g2p({"amount": body.get("balance"), "currency": body.get("currency")})
        st.setdefault("g2p_accounts", {})[number] = {"currency": currency, "balance_minor": minor,
                                                     "blocked_minor": 0}
        return 201, {"account_number": number}

    def _g2p_account(self, st, body: dict[str, Any]) -> tuple[str, dict, int]:
        (number,) = self._need_g2p(body, "account_number")
        minor, currency = self._minor_g2p(body)
        account = st.get("g2p_accounts", {}).get(number)
        if account is None or account["currency"] != currency:
            raise self._refused(404, f"account_number: no {currency} account {number!r}")
        return number, account, minor

    def _g2p_check_funds(self, st, body: dict[str, Any]) -> tuple[int, dict]:
        number, account, minor = self._g2p_account(st, body)
        available = account["balance_minor"] - account["blocked_minor"]
        return 200, {"account_number": number, "has_sufficient_funds": available >= minor}

    def _g2p_block_funds(self, st, body: dict[str, Any]) -> tuple[int, dict]:
        number, account, minor = self._g2p_account(st, body)
        if account["balance_minor"] - account["blocked_minor"] < minor:
            raise self._refused(422, f"account_number: {number!r} has not the funds to block")
        account["blocked_minor"] += minor
        reference = self._next(st, "g2p_blocks", "BLK")
        block = {"account_number": number, "currency": account["currency"], "amount_minor": minor,
                 "released_minor": 0}
        st.setdefault("g2p_blocks", {})[reference] = block
        return 201, {"block_reference": reference}

    def _g2p_pay(self, st, body: dict[str, Any]) -> tuple[int, dict]:
        """Pay each item from the block (`reference` is the payer's disbursement id); outcomes in order."""
        block_ref, items = self._need_g2p(body, "block_reference", "items")
        block = st.get("g2p_blocks", {}).get(block_ref)
        if block is None:
            raise self._refused(404, f"block_reference: no block {block_ref!r}")
        if not isinstance(items, list) or len(items) > MAX_PAYMENTS:
            raise self._refused(422, f"items: must be a list of at most {MAX_PAYMENTS}")
        share = st.get("g2p_config", {}).get("fail_share", 0.0)
        return 200, {"items": [self._g2p_pay_item(st, block, item, share) for item in items]}

    def _g2p_pay_item(self, st, block: dict, item: dict, share: float) -> dict:
        reference, minor = item.get("reference"), item.get("amount_minor")
        payments = st.setdefault("g2p_payments", {})
        if (prior := payments.get(reference)) is not None:
            return {"reference": reference, "status": "failed" if prior["status"] == "failed" else "paid",
                    "error": prior.get("error"), "payment_id": prior["payment_id"]}
        if not isinstance(reference, str) or not isinstance(minor, int) or minor <= 0:
            return {"reference": reference, "status": "failed", "error": "reference, amount_minor: required"}
        if block["amount_minor"] - block["released_minor"] < minor:
            return {"reference": reference, "status": "failed", "error": "amount exceeds the block"}
        payment_id = self._next(st, "g2p_payments", "GP")
        error = failure_of(reference, share)
        payments[reference] = {"payment_id": payment_id, "account_number": block["account_number"],
                               "currency": block["currency"], "amount_minor": minor,
                               "status": "failed" if error else "paid", "error": error,
                               "booked_on": date.today().isoformat()}
        if error is None:
            block["released_minor"] += minor
            account = st["g2p_accounts"][block["account_number"]]
            account["balance_minor"] -= minor
            account["blocked_minor"] -= minor
        return {"reference": reference, "status": "failed" if error else "paid", "error": error,
                "payment_id": payment_id}

    def _g2p_statement(self, st, body: dict[str, Any], fmt: str, account: str) -> tuple[int, dict]:
        return 200, {"format": fmt, "content": self._g2p_render(st, account, fmt, None)}

    def _g2p_render(self, st, account: str, fmt: str, booked: date | None) -> str:
        render = statements.RENDERERS.get(fmt)
        if render is None:
            known = ", ".join(statements.RENDERERS)
            raise self._refused(404, f"statement format {fmt!r} is not one of {known}")
        lines = []
        for reference, p in st.get("g2p_payments", {}).items():
            if p["account_number"] != account or p["status"] == "failed":
                continue
            pay = (reference, p["payment_id"], p["amount_minor"], p["currency"])
            if booked is None or p["booked_on"] == booked.isoformat():
                copies = 2 if p.get("listed_twice") else 1
                lines += [statements.Line(*pay, "D", "g2p disbursement")] * copies
            if p["status"] == "returned" and (booked is None or p["returned_on"] == booked.isoformat()):
                lines.append(statements.Line(*pay, "RD", p["reason"]))
        return render(lines, booked or date.today(), account=account)
