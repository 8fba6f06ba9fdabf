"""Voucher distribution: what a distributor pays for vouchers of a program it is assigned to.

The price of one voucher is its face value less the assignment's `discount_percent` when the agreement
gives one, else its face value plus the program's `issuance_fee_percent`; the percentage is rounded half up
to the currency's minor unit, per voucher. The wallet is the party's ledger account, in the program's
currency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from ops_pipeline.db.schema import gc_assignments
from ops_pipeline.errors import Conflict, InvalidInput
from ops_pipeline.giftcards.kinds import PARTIES, PROGRAMS
from ops_pipeline.giftcards.records import require
from ops_pipeline.giftcards.vouchers import face_value_allowed
from ops_pipeline.money import to_major, to_minor
from ops_pipeline.workspace import Workspace


@dataclass(frozen=True)
class Quote:
    party_id: str
    program_id: str
    wallet_account_id: str
    currency: str
    face_value_minor: int
    unit_price_minor: int
    count: int
    assignment_id: int

    @property
    def total_minor(self) -> int:
        return self.unit_price_minor * self.count

    def amount(self, minor: int) -> str:
        return f"{to_major(minor, self.currency)} {self.currency}"


def _percent_of(minor: int, percent: Decimal) -> int:
    return int((Decimal(minor) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def quote(ws: Workspace, party_id: str, program_id: str, face_value: Decimal, count: int, on: date) -> Quote:
    """The price of `count` vouchers at `face_value` for an active party assigned to an active program on
    `on`; InvalidInput for a missing record, Conflict for an inactive or unassigned one."""
    t = gc_assignments.c
    with ws.read_engine.connect() as conn:
        party = require(conn, PARTIES, party_id, "distributor_id")
        program = require(conn, PROGRAMS, program_id, "program_id")
        assignment = conn.execute(select(gc_assignments).where(
            t.party_id == party_id, t.program_id == program_id, t.starts_on <= on,
            t.ends_on.is_(None) | (t.ends_on >= on)).order_by(t.id.desc())).first()
    for noun, key, row in (("party", party_id, party), ("program", program_id, program)):
        if row.status != "active":
            raise Conflict(f"{noun} {key!r} is inactive")
    if assignment is None:
        raise Conflict(f"distributor_id: party {party_id!r} is not assigned to program {program_id!r} "
                       f"on {on}")
    currency = program.currency
    if party.wallet_currency != currency:
        raise Conflict(f"distributor_id: the wallet of {party_id!r} is in {party.wallet_currency}, "
                       f"program {program_id!r} in {currency}")
    face_minor = to_minor(face_value, currency, "face_value", allow_zero=False)
    if not face_value_allowed(program.details["pricing"], to_major(face_minor, currency)):
        raise InvalidInput(f"face_value: {face_value} is not a face value of program {program_id!r}")
    discount = Decimal(assignment.details.get("discount_percent") or 0)
    fee = Decimal(program.details["pricing"]["issuance_fee_percent"])
    price = face_minor - _percent_of(face_minor, discount) if discount else \
        face_minor + _percent_of(face_minor, fee)
    return Quote(party_id, program_id, party.wallet_account_id, currency, face_minor, price, count,
                 assignment.id)
