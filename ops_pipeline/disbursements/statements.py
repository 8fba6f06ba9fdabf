"""Statements of the programs' sponsor accounts: accepted (MT940 or camt.053), loaded once, reconciled.

A statement whose account (`:25:` / camt `Acct/Id`) is not the sponsor account of a configured program is
refused with INVALID_ACCOUNT_NUMBER before anything is written; a file holds one account's statement.
Accepting is synchronous: the file's entries go to the lake's `bank_statement_entries` (the statement intake)
and are reconciled at once; accepting the same file again reconciles it again, which changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select

from ops_pipeline import audit
from ops_pipeline.db.schema import g2p_statements
from ops_pipeline.disbursements import programs, recon
from ops_pipeline.disbursements.codes import G2PError
from ops_pipeline.errors import InvalidInput
from ops_pipeline.statements import Entry, intake
from ops_pipeline.workspace import Workspace

INVALID_ACCOUNT_NUMBER = "INVALID_ACCOUNT_NUMBER"
STATEMENT_UPLOAD_ERROR = "STATEMENT_UPLOAD_ERROR"


@dataclass(frozen=True)
class Statement:
    statement_id: str
    program: str
    account: str
    file_name: str
    format: str
    entries: int
    remittances: int
    reversals: int
    exceptions: int
    uploaded_by: str
    uploaded_at: datetime
    reconciled_at: datetime | None


def program_of(ws: Workspace, entries: list[Entry]) -> programs.Program:
    """The program whose sponsor account the entries are of; INVALID_ACCOUNT_NUMBER otherwise."""
    accounts = sorted({e.account for e in entries})
    by_account = {p.sponsor_account: p for p in programs.list_programs(ws)}
    unknown = [a for a in accounts if a not in by_account]
    if unknown:
        raise G2PError(
            INVALID_ACCOUNT_NUMBER,
            f"account: {unknown[0]!r} is not the sponsor account of a configured program",
        )
    if len(accounts) != 1:
        raise G2PError(
            INVALID_ACCOUNT_NUMBER,
            f"account: a file must be a statement of one sponsor account, not {accounts}",
        )
    return by_account[accounts[0]]


def accept(ws: Workspace, data: bytes, file_name: str, actor: str) -> recon.ReconOutcome:
    """Check the account, load the file (once) and reconcile it; InvalidInput for a malformed file."""
    entries = intake.parse(data, intake.detect(data))
    if not entries:
        raise InvalidInput(f"file: {file_name!r} holds no statement entries")
    program = program_of(ws, entries)
    loaded = intake.load_statement(ws, data, file_name, actor, entries)
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        known = conn.execute(
            select(g2p_statements.c.statement_id).where(g2p_statements.c.statement_id == loaded.statement_id)
        ).first()
        if known is None:
            values = {
                "statement_id": loaded.statement_id,
                "program": program.mnemonic,
                "account": program.sponsor_account,
                "file_name": file_name[:256],
                "format": loaded.format,
                "entries": len(entries),
                "remittances": 0,
                "reversals": 0,
                "exceptions": 0,
            }
            conn.execute(insert(g2p_statements).values(**values, uploaded_by=actor, uploaded_at=now))
            audit.record(
                conn,
                actor=actor,
                entity_type="g2p_statement",
                entity_id=loaded.statement_id,
                action="accept",
                after=values,
            )
    return recon.reconcile(ws, loaded.statement_id, actor)


def list_statements(ws: Workspace, program: str | None = None, limit: int = 100) -> list[Statement]:
    """The newest accepted statements with their recon counts."""
    s = g2p_statements.c
    query = (
        select(*(s[f] for f in Statement.__dataclass_fields__))
        .order_by(s.uploaded_at.desc(), s.statement_id)
        .limit(limit)
    )
    if program:
        query = query.where(s.program == program)
    with ws.read_engine.connect() as conn:
        return [Statement(*row) for row in conn.execute(query)]
