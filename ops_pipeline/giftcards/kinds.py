"""The record kinds: principals (brands, malls, tenants), programs, parties (distributors, B2B customers);
and what only one kind has: a program's bank restriction state, a party's wallet balance."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy import update as sql_update

from ops_pipeline import audit
from ops_pipeline.db.schema import gc_parties, gc_principals, gc_programs
from ops_pipeline.errors import Conflict, InvalidInput, NotFound
from ops_pipeline.giftcards import model
from ops_pipeline.giftcards.records import Kind, find, get, require, update_record
from ops_pipeline.money import to_major
from ops_pipeline.workspace import Workspace


def _check_principal(conn: Connection, p: model.Principal) -> None:
    if p.mall_id is not None and require(conn, PRINCIPALS, p.mall_id, "mall_id").kind != "mall":
        raise InvalidInput(f"mall_id: principal {p.mall_id!r} is not a mall")


def _check_program(conn: Connection, p: model.Program) -> None:
    for i, principal_id in enumerate(p.principal_ids):
        require(conn, PRINCIPALS, principal_id, f"principal_ids[{i}]")


def _check_party(conn: Connection, p: model.Party) -> None:
    wallet = p.wallet_account_id or p.party_id
    other = conn.execute(select(gc_parties.c.party_id).where(
        gc_parties.c.wallet_account_id == wallet, gc_parties.c.party_id != p.party_id)).first()
    if other is not None:
        raise Conflict(f"wallet_account_id: {wallet!r} is the wallet of party {other.party_id!r}")


PRINCIPALS = Kind("principal", gc_principals, "principal_id", model.Principal,
                  lambda p: {"kind": p.kind, "mall_id": p.mall_id, "name": p.name}, _check_principal)
PROGRAMS = Kind("program", gc_programs, "program_id", model.Program,
                lambda p: {"name": p.name, "currency": p.currency}, _check_program,
                initial=(("restriction_state", "pending"),))
PARTIES = Kind("party", gc_parties, "party_id", model.Party,
               lambda p: {"kind": p.kind, "name": p.name, "wallet_currency": p.wallet.currency,
                          "wallet_account_id": p.wallet_account_id or p.party_id}, _check_party)
KINDS = {k.noun: k for k in (PRINCIPALS, PROGRAMS, PARTIES)}


def update_program(ws: Workspace, program_id: str, changes: dict[str, Any], actor: str, **options: Any
                   ) -> dict[str, Any]:
    """Like `update_record`; a change of its principals makes the bank restriction pending again."""
    def restriction(changed: set[str]) -> dict[str, Any]:
        if "principal_ids" not in changed:
            return {}
        return {"restriction_state": "pending", "restriction_detail": "principals changed",
                "restriction_at": datetime.now(UTC)}

    return update_record(ws, PROGRAMS, program_id, changes, actor, on_change=restriction, **options)


def set_restriction(ws: Workspace, program_id: str, state: str, actor: str, detail: str | None = None
                    ) -> dict[str, Any]:
    """Record the bank restriction state of the program's VPA list: pending, pushed or failed."""
    if state not in model.RESTRICTION_STATES:
        raise InvalidInput(f"state: {state!r} is not one of {', '.join(model.RESTRICTION_STATES)}")
    with ws.engine.begin() as conn:
        row = find(conn, PROGRAMS, program_id, lock=True)
        conn.execute(sql_update(gc_programs).where(gc_programs.c.program_id == program_id).values(
            restriction_state=state, restriction_detail=detail, restriction_at=datetime.now(UTC),
            version=row.version + 1, updated_by=actor, updated_at=datetime.now(UTC)))
        audit.record(conn, actor=actor, entity_type=PROGRAMS.entity_type, entity_id=program_id,
                     action="restriction", reason=detail,
                     before={"restriction_state": row.restriction_state},
                     after={"restriction_state": state})
    return get(ws, PROGRAMS, program_id)


def party_with_wallet(ws: Workspace, party_id: str) -> dict[str, Any]:
    """The party with its wallet balance: the available balance of its ledger account in its currency."""
    from ops_pipeline.ledger.balances import get_balances

    party = get(ws, PARTIES, party_id)
    currency = party["wallet_currency"]
    try:
        minor = get_balances(ws, party["wallet_account_id"], currency)[0].available_minor
    except NotFound:  # no ledger entry yet: an empty wallet
        minor = 0
    return {**party, "wallet_balance": str(to_major(minor, currency))}


def update(ws: Workspace, kind: Kind, key: str, changes: dict[str, Any], actor: str, **options: Any
           ) -> dict[str, Any]:
    """Change a record of any kind (see `update_record`; a program also through `update_program`)."""
    if kind is PROGRAMS:
        return update_program(ws, key, changes, actor, **options)
    return update_record(ws, kind, key, changes, actor, **options)


def show(ws: Workspace, kind: Kind, key: str) -> dict[str, Any]:
    """One record as views show it; a party with its wallet balance."""
    return party_with_wallet(ws, key) if kind is PARTIES else get(ws, kind, key)
