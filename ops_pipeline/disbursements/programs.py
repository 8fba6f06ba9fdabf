"""Benefit programs: an envelope names one; its sponsor bank account pays in its currency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update

from ops_pipeline import audit
from ops_pipeline.db.schema import g2p_programs
from ops_pipeline.errors import Conflict, InvalidInput, NotFound
from ops_pipeline.money import exponent
from ops_pipeline.workspace import Workspace

_FIELDS = ("mnemonic", "name", "sponsor_bank_code", "sponsor_account", "currency", "active")


@dataclass(frozen=True)
class Program:
    mnemonic: str
    name: str
    sponsor_bank_code: str
    sponsor_account: str
    currency: str
    active: bool


def _required(value: str, field: str, max_len: int) -> str:
    value = (value or "").strip()
    if not value or len(value) > max_len:
        raise InvalidInput(f"{field}: {value!r} must be a non-empty text of at most {max_len} characters")
    return value


def add_program(
    ws: Workspace,
    *,
    mnemonic: str,
    name: str,
    sponsor_bank_code: str,
    sponsor_account: str,
    currency: str,
    actor: str,
) -> Program:
    """Configure a new benefit program (active); Conflict if the mnemonic or the sponsor account is taken."""
    currency = (currency or "").strip().upper()
    exponent(currency)  # InvalidInput naming the currency if it is not ISO 4217
    program = Program(
        _required(mnemonic, "mnemonic", 64),
        _required(name, "name", 200),
        _required(sponsor_bank_code, "sponsor_bank_code", 64),
        _required(sponsor_account, "sponsor_account", 64),
        currency,
        True,
    )
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        taken = conn.execute(
            select(g2p_programs.c.mnemonic).where(
                (g2p_programs.c.mnemonic == program.mnemonic)
                | (g2p_programs.c.sponsor_account == program.sponsor_account)
            )
        ).first()
        if taken is not None:
            raise Conflict(
                f"mnemonic: {program.mnemonic!r} or sponsor_account: {program.sponsor_account!r} "
                f"is already configured (program {taken.mnemonic!r})"
            )
        values = {f: getattr(program, f) for f in _FIELDS}
        conn.execute(insert(g2p_programs).values(**values, created_by=actor, created_at=now, updated_at=now))
        audit.record(
            conn,
            actor=actor,
            entity_type="g2p_program",
            entity_id=program.mnemonic,
            action="create",
            after=values,
        )
    return program


def set_active(ws: Workspace, mnemonic: str, active: bool, actor: str) -> Program:
    """Activate or deactivate a program; a deactivated one takes no new envelopes."""
    with ws.engine.begin() as conn:
        before = find(conn, mnemonic)
        if before is None:
            raise NotFound(f"mnemonic: no program {mnemonic!r}")
        conn.execute(
            update(g2p_programs)
            .where(g2p_programs.c.mnemonic == mnemonic)
            .values(active=active, updated_at=datetime.now(UTC))
        )
        audit.record(
            conn,
            actor=actor,
            entity_type="g2p_program",
            entity_id=mnemonic,
            action="activate" if active else "deactivate",
            before={"active": before.active},
            after={"active": active},
        )
    return Program(**{**before.__dict__, "active": active})


def list_programs(ws: Workspace) -> list[Program]:
    with ws.read_engine.connect() as conn:
        rows = conn.execute(select(*(g2p_programs.c[f] for f in _FIELDS)).order_by(g2p_programs.c.mnemonic))
        return [Program(*row) for row in rows]


def find(conn: Connection, mnemonic: str) -> Program | None:
    row = conn.execute(
        select(*(g2p_programs.c[f] for f in _FIELDS)).where(g2p_programs.c.mnemonic == mnemonic)
    ).first()
    return None if row is None else Program(*row)
