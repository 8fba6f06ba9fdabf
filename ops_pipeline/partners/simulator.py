"""The partner and bank simulator: the logic both transports (FastAPI app, in-process sandbox) call.

Deterministic (ids from per-kind counters, no randomness), thread-safe, with an idempotency store:
a request with an `Idempotency-Key` seen before answers the stored response and does nothing again
(only successes are stored, so a request refused for a missing precondition can succeed later); calls
are counted per key so tests can prove an action never ran twice. Secrets it receives (UPI VPAs,
account numbers) are kept only as digests and masked forms. Faults make the next calls to a path
answer an error status, or answer late after doing the work (a client timeout with the side effect done).

The state is in memory; given a `state_file` it is loaded and saved around every call under a file
lock, so several processes (CLI workers, Dagster runs) share one sandbox world.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ops_pipeline.crypto import mask_head, mask_tail, mask_vpa
from ops_pipeline.errors import InvalidInput
from ops_pipeline.money import to_major, to_minor
from ops_pipeline.partners import statements
from ops_pipeline.partners.g2p_sim import G2P_KINDS, G2PRoutes

State = dict[str, Any]
Reply = tuple[int, dict[str, Any]]
MAX_BATCH = 1000  # payout items per request
KINDS = (
    "principals",
    "programs",
    "distributors",
    "wallets",
    "beneficiaries",
    "mandates",
    "deposits",
    "transfers",
    "restrictions",
    "payouts",
    *G2P_KINDS,
)


class Refused(Exception):
    """A request the partner refuses: answered with `status` and `{"error": message}`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Fault:
    path: str  # a path prefix, e.g. "/principals"
    status: int | None  # answer this status without doing anything ...
    delay: float  # ... or do the work, then answer after `delay` seconds
    times: int


def _empty() -> State:
    return {"seq": {}, "calls": {}, "responses": {}, **{kind: {} for kind in KINDS}}


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _need(body: dict[str, Any], *names: str) -> list[Any]:
    missing = [n for n in names if body.get(n) in (None, "", [])]
    if missing:
        raise Refused(422, f"{missing[0]}: is required")
    return [body[n] for n in names]


def _minor(body: dict[str, Any]) -> tuple[int, str]:
    amount, currency = _need(body, "amount", "currency")
    try:
        return to_minor(str(amount), currency, allow_zero=False), currency
    except InvalidInput as exc:
        raise Refused(422, str(exc)) from None


def _money(minor: int, currency: str) -> str:
    return str(to_major(minor, currency))


def _amount(minor: int, currency: str) -> dict[str, str]:
    return {"amount": _money(minor, currency), "currency": currency}


def _account(body: dict[str, Any]) -> dict[str, str]:
    holder, number, ifsc = _need(body, "account_holder", "account_number", "ifsc")
    return {
        "account_holder": holder,
        "account": mask_tail(number),
        "ifsc": mask_head(ifsc),
        "digest": digest(f"{number}|{ifsc}"),
    }


class Simulator(G2PRoutes):
    """Partner (principals, programs, distributors, wallets) and bank (beneficiaries, mandates,
    deposits, transfers, merchant payouts, voucher restrictions), and the G2P mapper and sponsor bank
    (`g2p_sim`), behind one `handle(method, path, body, key)`."""

    _need_g2p, _minor_g2p, _refused = staticmethod(_need), staticmethod(_minor), Refused

    def __init__(self, state_file: Path | None = None):
        self._lock = threading.RLock()
        self._state_file = state_file
        self._state = _empty()
        self._faults: list[Fault] = []
        self._wake = threading.Event()  # set by `clear_faults` to cut pending delays short
        R = re.compile
        self._routes: list[tuple[str, re.Pattern, Callable[..., Reply]]] = [
            ("GET", R(r"/healthz"), lambda st, b: (200, {"status": "ok"})),
            ("POST", R(r"/principals"), self._create_principal),
            ("POST", R(r"/programs"), self._create_program),
            ("POST", R(r"/programs/(?P<program_id>[^/]+)/principals"), self._associate_principals),
            ("POST", R(r"/distributors"), self._create_distributor),
            ("POST", R(r"/wallets"), self._open_wallet),
            ("POST", R(r"/wallets/(?P<distributor_id>[^/]+)/credits"), self._credit_wallet),
            ("POST", R(r"/beneficiaries"), self._register_beneficiary),
            ("POST", R(r"/mandates"), self._register_mandate),
            ("POST", R(r"/deposits/verify"), self._verify_deposit),
            ("POST", R(r"/collections"), self._collect),
            ("POST", R(r"/transfers"), self._transfer),
            ("GET", R(r"/transfers/(?P<transfer_id>[^/]+)"), self._get_transfer),
            ("POST", R(r"/payouts/batch"), self._payout_batch),
            ("POST", R(r"/payouts/lookup"), self._lookup_payouts),
            ("GET", R(r"/statements/(?P<fmt>[^/]+)"), self._statement),
            ("GET", R(r"/statements/(?P<fmt>[^/]+)/(?P<day>[^/]+)"), self._statement),
            ("GET", R(r"/transfer-statements/(?P<fmt>[^/]+)"), self._transfer_statement),
            ("GET", R(r"/transfer-statements/(?P<fmt>[^/]+)/(?P<day>[^/]+)"), self._transfer_statement),
            ("PUT", R(r"/voucher-restrictions/(?P<program_id>[^/]+)"), self._push_restrictions),
            ("GET", R(r"/(?P<kind>principals|programs|distributors|wallets)/(?P<key>[^/]+)"), self._get),
            *self._g2p_routes(),
        ]

    # -- the one entry point ---------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, body: dict[str, Any] | None = None, idempotency_key: str | None = None
    ) -> Reply:
        """Answer one request: (HTTP status, JSON body)."""
        if body is not None and not isinstance(body, dict):
            return 400, {"error": "body: must be a JSON object"}
        if path.startswith("/_sim/"):
            return self._control(method, path, body or {})
        handler, params = self._route(method, path)
        if handler is None:
            return params["status"], {"error": f"{method} {path}: no such endpoint"}
        fault = self._take_fault(path)
        with self._transaction() as st:
            if idempotency_key:
                st["calls"][idempotency_key] = st["calls"].get(idempotency_key, 0) + 1
            if fault is not None and fault.status is not None:
                return fault.status, {"error": f"injected failure {fault.status}"}
            status, reply = self._once(st, method, path, body or {}, idempotency_key, handler, params)
        if fault is not None and fault.delay:
            self._wake.wait(fault.delay)
        return status, reply

    def _once(self, st, method, path, body, key, handler, params) -> Reply:
        fingerprint = digest(json.dumps([method, path, body], sort_keys=True, default=str))
        if key and (prior := st["responses"].get(key)):
            if prior["fingerprint"] != fingerprint:
                return 422, {"error": f"Idempotency-Key {key!r} was used for a different request"}
            return prior["status"], prior["body"]
        try:
            status, reply = handler(st, body, **params)
        except Refused as exc:
            return exc.status, {"error": str(exc)}
        if key and 200 <= status < 300:
            st["responses"][key] = {"fingerprint": fingerprint, "status": status, "body": reply}
        return status, reply

    def _route(self, method: str, path: str):
        allowed = False
        for verb, pattern, handler in self._routes:
            if m := pattern.fullmatch(path):
                if verb == method:
                    return handler, m.groupdict()
                allowed = True
        return None, {"status": 405 if allowed else 404}

    # -- state -----------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[State]:
        with self._lock:
            if self._state_file is None:
                yield self._state
                return
            self._state_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self._state_file.with_suffix(".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if self._state_file.exists():
                    self._state = json.loads(self._state_file.read_text())
                yield self._state
                if not write:
                    return
                tmp = self._state_file.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(self._state))
                tmp.replace(self._state_file)

    def state(self) -> State:
        """A copy of everything the simulator holds (no secrets: digests and masked forms only)."""
        with self._transaction(write=False) as st:
            return copy.deepcopy(st)

    def calls(self, key: str | None = None):
        """How many requests carried `key` (or all counts); 500s and replays included."""
        counts = self.state()["calls"]
        return counts if key is None else counts.get(key, 0)

    def restriction_allows(self, program_id: str, vpa: str) -> bool:
        pushed = self.state()["restrictions"].get(program_id)
        return pushed is not None and digest(vpa) in pushed["digests"]

    @staticmethod
    def _next(st: State, kind: str, prefix: str) -> str:
        st["seq"][kind] = st["seq"].get(kind, 0) + 1
        return f"{prefix}-{st['seq'][kind]:06d}"

    # -- faults and seeding (also over HTTP under /_sim/) -------------------------------------------------

    def inject(self, path: str, *, status: int | None = None, delay: float = 0.0, times: int = 1) -> None:
        """The next `times` calls to paths starting with `path` answer `status`, or answer `delay` s late."""
        if (status is None) == (not delay):
            raise ValueError("inject: give either status or delay")
        with self._lock:
            self._wake.clear()
            self._faults.append(Fault(path, status, delay, times))

    @property
    def faulty(self) -> bool:
        """Some fault is waiting to be taken (requests may then be slow on purpose)."""
        return bool(self._faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._wake.set()

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def add_deposit(self, reference: str, amount: str, currency: str) -> None:
        """A deposit the bank has received, so verifying it succeeds."""
        minor, currency = _minor({"amount": amount, "currency": currency})
        with self._transaction() as st:
            st["deposits"][reference] = {"amount_minor": minor, "currency": currency, "claimed_by": None}

    def _control(self, method: str, path: str, body: dict[str, Any]) -> Reply:
        try:
            if (method, path) == ("POST", "/_sim/deposits"):
                self.add_deposit(*_need(body, "reference", "amount", "currency"))
                return 201, {"reference": body["reference"]}
            if (method, path) == ("POST", "/_sim/faults"):
                self.inject(
                    _need(body, "path")[0],
                    status=body.get("status"),
                    delay=float(body.get("delay") or 0),
                    times=int(body.get("times", 1)),
                )
                return 201, {"path": body["path"]}
            if (method, path) == ("DELETE", "/_sim/faults"):
                self.clear_faults()
                return 200, {"cleared": True}
            if (method, path) == ("POST", "/_sim/transfers/settle"):
                (reference,) = _need(body, "reference")
                transfer_id = self.settle_transfer(reference, body.get("status", "completed"),
                                                   body.get("reason"), body.get("booked_amount"))
                return 200, {"transfer_id": transfer_id}
            if (method, path) == ("POST", "/_sim/g2p/links"):
                self.link_fas({b: (fa, name) for b, fa, name in _need(body, "links")[0]})
                return 201, {"linked": len(body["links"])}
            if (method, path) == ("POST", "/_sim/g2p/fail_share"):
                self.set_fail_share(float(_need(body, "share")[0]))
                return 200, {"share": body["share"]}
            if (method, path) == ("GET", "/_sim/state"):
                return 200, self.state()
        except (Refused, ValueError) as exc:
            return getattr(exc, "status", 422), {"error": str(exc)}
        return 404, {"error": f"{method} {path}: no such control endpoint"}

    # -- partner -----------------------------------------------------------------------------------------

    def _create_principal(self, st: State, body: dict[str, Any]) -> Reply:
        principal_id, legal_name, vpas = _need(body, "principal_id", "legal_name", "upi_vpas")
        if principal_id in st["principals"]:
            raise Refused(409, f"principal {principal_id!r} already exists")
        ref = self._next(st, "principals", "PR")
        st["principals"][principal_id] = {
            "partner_ref": ref,
            "legal_name": legal_name,
            "mall_id": body.get("mall_id"),
            "commission_percent": body.get("commission_percent"),
            "upi_vpas": [mask_vpa(v) for v in vpas],
            "vpa_digests": [digest(v) for v in vpas],
            "status": "active",
        }
        return 201, {"principal_id": principal_id, "partner_ref": ref, "upi_vpas": len(vpas)}

    def _create_program(self, st: State, body: dict[str, Any]) -> Reply:
        program_id = _need(body, "program_id", "name", "currency")[0]
        if program_id in st["programs"]:
            raise Refused(409, f"program {program_id!r} already exists")
        ref = self._next(st, "programs", "GC")
        st["programs"][program_id] = {**body, "partner_ref": ref, "principal_ids": [], "status": "live"}
        return 201, {"program_id": program_id, "partner_ref": ref, "status": "live"}

    def _associate_principals(self, st: State, body: dict[str, Any], program_id: str) -> Reply:
        (principal_ids,) = _need(body, "principal_ids")
        program = st["programs"].get(program_id)
        if program is None:
            raise Refused(404, f"program {program_id!r} does not exist")
        unknown = [p for p in principal_ids if p not in st["principals"]]
        if unknown:
            raise Refused(422, f"principal {unknown[0]!r} is not onboarded")
        program["principal_ids"] = sorted(set(program["principal_ids"]) | set(principal_ids))
        return 200, {"program_id": program_id, "principal_ids": program["principal_ids"]}

    def _create_distributor(self, st: State, body: dict[str, Any]) -> Reply:
        distributor_id, _, programs = _need(body, "distributor_id", "legal_name", "programs")
        if distributor_id in st["distributors"]:
            raise Refused(409, f"distributor {distributor_id!r} already exists")
        unknown = [p["program_id"] for p in programs if p["program_id"] not in st["programs"]]
        if unknown:
            raise Refused(422, f"program {unknown[0]!r} does not exist")
        ref = self._next(st, "distributors", "DS")
        st["distributors"][distributor_id] = {**body, "partner_ref": ref, "status": "active"}
        return 201, {"distributor_id": distributor_id, "partner_ref": ref, "status": "active"}

    def _open_wallet(self, st: State, body: dict[str, Any]) -> Reply:
        distributor_id, currency = _need(body, "distributor_id", "currency")
        if distributor_id not in st["distributors"]:
            raise Refused(422, f"distributor {distributor_id!r} is not onboarded")
        if distributor_id in st["wallets"]:
            raise Refused(409, f"distributor {distributor_id!r} already has a wallet")
        ref = self._next(st, "wallets", "WL")
        wallet = {"wallet_id": ref, "currency": currency, "balance_minor": 0, "credits": []}
        st["wallets"][distributor_id] = wallet
        return 201, {"wallet_id": ref, "distributor_id": distributor_id, "balance": _money(0, currency)}

    def _credit_wallet(self, st: State, body: dict[str, Any], distributor_id: str) -> Reply:
        minor, currency = _minor(body)
        (reference,) = _need(body, "reference")
        wallet = st["wallets"].get(distributor_id)
        if wallet is None:
            raise Refused(404, f"distributor {distributor_id!r} has no wallet")
        if wallet["currency"] != currency:
            raise Refused(422, f"currency: wallet is in {wallet['currency']}, not {currency}")
        wallet["balance_minor"] += minor
        wallet["credits"].append({"reference": reference, "amount_minor": minor})
        return 200, {"distributor_id": distributor_id, "balance": _money(wallet["balance_minor"], currency)}

    def _get(self, st: State, body: dict[str, Any], kind: str, key: str) -> Reply:
        if key not in st[kind]:
            raise Refused(404, f"{kind[:-1]} {key!r} does not exist")
        return 200, st[kind][key]

    # -- bank --------------------------------------------------------------------------------------------

    def _register_beneficiary(self, st: State, body: dict[str, Any]) -> Reply:
        (principal_id,) = _need(body, "principal_id")
        account = _account(body)
        ref = self._next(st, "beneficiaries", "BN")
        st["beneficiaries"][principal_id] = {"beneficiary_id": ref, **account}
        return 201, {"beneficiary_id": ref, "principal_id": principal_id, "account": account["account"]}

    def _register_mandate(self, st: State, body: dict[str, Any]) -> Reply:
        (distributor_id,) = _need(body, "distributor_id")
        account = _account(body)
        ref = self._next(st, "mandates", "MD")
        st["mandates"][distributor_id] = {"mandate_id": ref, **account}
        return 201, {"mandate_id": ref, "distributor_id": distributor_id, "account": account["account"]}

    def _verify_deposit(self, st: State, body: dict[str, Any]) -> Reply:
        (reference,) = _need(body, "reference")
        minor, currency = _minor(body)
        deposit = st["deposits"].get(reference)
        if deposit is None:
            raise Refused(404, f"deposit {reference!r} is unknown to the bank")
        if (deposit["amount_minor"], deposit["currency"]) != (minor, currency):
            have = f"{_money(deposit['amount_minor'], deposit['currency'])} {deposit['currency']}"
            raise Refused(422, f"deposit {reference!r} is {have}, not {_money(minor, currency)} {currency}")
        if deposit["claimed_by"] is not None:
            raise Refused(409, f"deposit {reference!r} was already claimed")
        deposit["claimed_by"] = body.get("claimed_by") or "verified"
        return 200, {"reference": reference, "verified": True, **_amount(minor, currency)}

    def _collect(self, st: State, body: dict[str, Any]) -> Reply:
        (distributor_id,) = _need(body, "distributor_id")
        minor, currency = _minor(body)
        if distributor_id not in st["mandates"]:
            raise Refused(422, f"distributor {distributor_id!r} has no direct-debit mandate")
        reference = self._next(st, "deposits", "COL")
        st["deposits"][reference] = {"amount_minor": minor, "currency": currency, "claimed_by": reference}
        return 201, {"reference": reference, "status": "settled", **_amount(minor, currency)}

    def _transfer(self, st: State, body: dict[str, Any]) -> Reply:
        """Without a `reference`: paid at once to the registered beneficiary (`completed`). With one (the
        payer's id of the transfer): `pending` until `settle_transfer`, to the `account` given or the
        registered one; a second transfer with a reference whose transfer has not failed is refused."""
        principal_id, purpose = _need(body, "principal_id", "purpose")
        minor, currency = _minor(body)
        reference = body.get("reference")
        if principal_id not in st["beneficiaries"] and not (reference and body.get("account")):
            raise Refused(422, f"principal {principal_id!r} has no registered bank account")
        if reference:
            prior = [t for t in st["transfers"].values() if t.get("reference") == reference]
            if any(t["status"] != "failed" for t in prior):
                raise Refused(409, f"reference {reference!r} has a transfer already")
        transfer_id = self._next(st, "transfers", "TR")
        status = "pending" if reference else "completed"
        st["transfers"][transfer_id] = {
            "principal_id": principal_id,
            "amount_minor": minor,
            "currency": currency,
            "purpose": purpose,
            "status": status,
            **({"reference": reference, "reason": None, "booked_on": None} if reference else {}),
        }
        return 201, {"transfer_id": transfer_id, "status": status, **_amount(minor, currency)}

    def settle_transfer(self, reference: str, status: str = "completed", reason: str | None = None,
                        booked_amount: str | None = None) -> str:
        """The bank finishes the pending transfer of `reference`: `completed` (booked today on the principal
        transfers statement, for `booked_amount` if given, else its amount) or `failed` with `reason`."""
        if status not in ("completed", "failed"):
            raise ValueError(f"status {status!r} is not completed or failed")
        with self._transaction() as st:
            found = [(k, t) for k, t in st["transfers"].items()
                     if t.get("reference") == reference and t["status"] == "pending"]
            if not found:
                raise ValueError(f"reference {reference!r} has no pending transfer")
            transfer_id, transfer = found[-1]
            booked = _minor({"amount": booked_amount, "currency": transfer["currency"]})[0] \
                if booked_amount else transfer["amount_minor"]
            transfer.update(status=status, reason=reason if status == "failed" else None,
                            booked_on=date.today().isoformat() if status == "completed" else None,
                            booked_minor=booked)
            return transfer_id

    def _get_transfer(self, st: State, body: dict[str, Any], transfer_id: str) -> Reply:
        transfer = st["transfers"].get(transfer_id)
        if transfer is None:
            raise Refused(404, f"transfer {transfer_id!r} does not exist")
        return 200, {"transfer_id": transfer_id, **transfer}

    def _payout_batch(self, st: State, body: dict[str, Any]) -> Reply:
        """Pay businesses to their accounts on file, item by item (like a bulk payout file).

        `reference` is the payer's id of the item: an item again with the same reference and content
        answers the payout already made; with other content it is rejected. A blocked business's items
        are rejected. Answers every item's outcome, in order."""
        (items,) = _need(body, "items")
        if not isinstance(items, list) or len(items) > MAX_BATCH:
            raise Refused(422, f"items: must be a list of at most {MAX_BATCH}")
        return 200, {"items": [self._pay_item(st, item) for item in items]}

    def _pay_item(self, st: State, item: Any) -> dict[str, Any]:
        try:
            if not isinstance(item, dict):
                raise Refused(422, "item: must be an object")
            business_id, reference = _need(item, "business_id", "reference")
            minor, currency = _minor(item)
        except Refused as exc:
            reference = item.get("reference") if isinstance(item, dict) else None
            return {"reference": reference, "status": "rejected", "error": str(exc)}
        prior = st["payouts"].get(reference)
        if prior is not None:
            if (prior["business_id"], prior["amount_minor"], prior["currency"]) != (
                business_id, minor, currency):
                return {"reference": reference, "status": "rejected",
                        "error": f"reference {reference!r} was used for another payout"}
            return {"reference": reference, "status": "paid", "payout_id": prior["payout_id"]}
        if business_id in st.get("blocked", []):
            error = f"account of {business_id!r} is blocked"
            return {"reference": reference, "status": "rejected", "error": error}
        payout_id = self._next(st, "payouts", "PO")
        st["payouts"][reference] = {"payout_id": payout_id, "business_id": business_id, "amount_minor": minor,
                                    "currency": currency, "status": "paid",
                                    "booked_on": date.today().isoformat()}
        return {"reference": reference, "status": "paid", "payout_id": payout_id}

    def _lookup_payouts(self, st: State, body: dict[str, Any]) -> Reply:
        """The status of each reference: paid (with the payout id) or absent."""
        (references,) = _need(body, "references")
        found = st["payouts"]
        return 200, {"items": [
            {"reference": r, "status": "paid", "payout_id": found[r]["payout_id"]} if r in found
            else {"reference": r, "status": "absent"}
            for r in references
        ]}

    def statement(self, fmt: str, booked: date | None = None, *, day: date | None = None) -> str:
        """The bank's statement (`mt940` or `camt053` text): of `day` (what it booked that day: payouts paid,
        reversals, charges), else of everything it ever booked, dated `booked` (default today)."""
        with self._transaction(write=False) as st:
            return self._render(st, fmt, day or booked, day)

    def reverse(self, reference: str, reason: str = "AC04") -> None:
        """A payout came back (the account was closed, say): the next statement carries its reversal."""
        with self._transaction() as st:
            payout = st["payouts"].get(reference)
            if payout is None or payout["status"] != "paid":
                raise ValueError(f"reference {reference!r} is no paid payout")
            payout.update(status="returned", returned_on=date.today().isoformat(), reason=reason)

    def charge(self, reference: str, amount: str, currency: str, text: str = "bank charge") -> None:
        """A debit the bank booked on the payout account that no payout explains."""
        minor, currency = _minor({"amount": amount, "currency": currency})
        with self._transaction() as st:
            st.setdefault("charges", []).append({"reference": reference, "amount_minor": minor,
                                                 "currency": currency, "text": text,
                                                 "booked_on": date.today().isoformat()})

    def _statement(self, st: State, body: dict[str, Any], fmt: str, day: str | None = None) -> Reply:
        try:
            wanted = date.fromisoformat(day) if day else None
        except ValueError:
            raise Refused(422, f"date: {day!r} is not an ISO date") from None
        return 200, {"format": fmt, "content": self._render(st, fmt, wanted, wanted)}

    @staticmethod
    def _render(st: State, fmt: str, booked: date | None, day: date | None) -> str:
        render = statements.RENDERERS.get(fmt)
        if render is None:
            raise Refused(404, f"statement format {fmt!r} is not one of {', '.join(statements.RENDERERS)}")
        on = day.isoformat() if day else None
        lines = []
        for reference, p in st["payouts"].items():
            pay = (reference, p["payout_id"], p["amount_minor"], p["currency"])
            if on in (None, p.get("booked_on")):
                lines.append(statements.Line(*pay, "D", f"payout to {p['business_id']}"))
            if p["status"] == "returned" and on in (None, p["returned_on"]):
                lines.append(statements.Line(*pay, "RD", p["reason"]))
        lines += [statements.Line(c["reference"], f"CHG-{n:06d}", c["amount_minor"], c["currency"], "D",
                                  c["text"])
                  for n, c in enumerate(st.get("charges", []), 1) if on in (None, c["booked_on"])]
        return render(lines, booked or date.today())

    def transfer_statement(self, fmt: str, day: date | None = None) -> str:
        """The statement of the principal transfers account: a `D` line per completed transfer with a
        reference (booked `day`, else all), the reference as end-to-end reference."""
        with self._transaction(write=False) as st:
            return self._render_transfers(st, fmt, day)

    def _transfer_statement(self, st: State, body: dict[str, Any], fmt: str, day: str | None = None) -> Reply:
        try:
            wanted = date.fromisoformat(day) if day else None
        except ValueError:
            raise Refused(422, f"date: {day!r} is not an ISO date") from None
        return 200, {"format": fmt, "content": self._render_transfers(st, fmt, wanted)}

    @staticmethod
    def _render_transfers(st: State, fmt: str, day: date | None) -> str:
        render = statements.RENDERERS.get(fmt)
        if render is None:
            raise Refused(404, f"statement format {fmt!r} is not one of {', '.join(statements.RENDERERS)}")
        on = day.isoformat() if day else None
        lines = [statements.Line(t["reference"], transfer_id, t["booked_minor"], t["currency"], "D",
                                 f"transfer to {t['principal_id']}")
                 for transfer_id, t in st["transfers"].items()
                 if t.get("booked_on") and on in (None, t["booked_on"])]
        return render(lines, day or date.today(), statements.PRINCIPAL_TRANSFERS)

    def block(self, business_id: str, blocked: bool = True) -> None:
        """Reject every payout to this business from now on (a frozen account), or no longer."""
        with self._transaction() as st:
            others = [b for b in st.get("blocked", []) if b != business_id]
            st["blocked"] = [*others, business_id] if blocked else others

    def _push_restrictions(self, st: State, body: dict[str, Any], program_id: str) -> Reply:
        (vpas,) = _need(body, "upi_vpas")
        version = st["restrictions"].get(program_id, {}).get("version", 0) + 1
        st["restrictions"][program_id] = {
            "version": version,
            "digests": sorted({digest(v) for v in vpas}),
            "masked": sorted({mask_vpa(v) for v in vpas}),
        }
        return 200, {"program_id": program_id, "count": len(set(vpas)), "version": version}
