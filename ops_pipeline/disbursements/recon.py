"""Reconcile a sponsor account's statement against the disbursements it paid (OpenG2P's MT940 processing).

`D` lines are remittances, matched by disbursement id (the entry's customer / end-to-end reference) AND
amount AND currency; `RD` lines reverse a remittance seen before (in this statement or an earlier one).
Debits go first, then reversals, each in file order. An entry that reconciles nothing is a recon exception
(one row per entry, never a failure of the statement). A statement entry is named by (statement id, entry
sequence); an entry already recorded (as a remittance, a reversal or an exception) is skipped, so
reconciling a statement again changes nothing.

Counters (under the envelope's row lock): a remittance adds one to `reconciled_count`; a reversal moves one
from `reconciled_count` to `reversed_count`, so shipped = reconciled + reversed + not yet on a statement.
A reversal credits the amount back to the program's ledger account once (entry id `g2p-reversal:<id>`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from ops_pipeline import audit
from ops_pipeline.db.bulk import insert_rows
from ops_pipeline.db.schema import (
    g2p_disbursement_recons,
    g2p_disbursements,
    g2p_envelopes,
    g2p_programs,
    g2p_recon_errors,
    g2p_statements,
)
from ops_pipeline.disbursements import codes
from ops_pipeline.errors import NotFound
from ops_pipeline.lake.tables import BANK_STATEMENT_ENTRIES
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.workspace import Workspace

DUPLICATE_DISBURSEMENT = "DUPLICATE_DISBURSEMENT"
INVALID_REVERSAL = "INVALID_REVERSAL"
DISBURSEMENT_NOT_SHIPPED = "DISBURSEMENT_NOT_SHIPPED"  # ours: the bank paid what was never sent to it
EXCEPTION_CODES = (
    DUPLICATE_DISBURSEMENT,
    INVALID_REVERSAL,
    codes.INVALID_DISBURSEMENT_ID,
    codes.INVALID_DISBURSEMENT_AMOUNT,
    codes.INVALID_DISBURSEMENT_CURRENCY_CODE,
    DISBURSEMENT_NOT_SHIPPED,
)
REVERSAL_ENTRY_TYPE = "g2p_reversal"
_CHUNK = 5_000
_RETURN_REASON = re.compile(r"(?:^|/)RTRN/([^/]+)")
_ENTRY_COLUMNS = (
    "sequence",
    "account",
    "entry_date",
    "value_date",
    "amount_minor",
    "currency",
    "direction",
    "customer_reference",
    "bank_reference",
    "details",
)


@dataclass(frozen=True)
class ReconOutcome:
    """A statement's reconciliation: totals recorded for it, and how many of them this run added."""

    statement_id: str
    entries: int
    remittances: int
    reversals: int
    exceptions: int
    added: int


@dataclass(frozen=True)
class ReconException:
    statement_id: str
    entry_sequence: int
    direction: str
    entry_date: date
    value_date: date
    amount_minor: int
    currency: str
    error_code: str
    detail: str
    disbursement_id: str | None
    bank_reference: str | None


@dataclass(frozen=True)
class DisbursementRecon:
    """What statements said of one disbursement: its remittance and reversal entries, and exceptions."""

    disbursement_id: str
    remittance_statement_id: str | None
    remittance_entry_sequence: int | None
    remittance_bank_reference: str | None
    remittance_entry_date: date | None
    remittance_value_date: date | None
    reconciled_at: datetime | None
    reversal_statement_id: str | None
    reversal_entry_sequence: int | None
    reversal_entry_date: date | None
    reversal_value_date: date | None
    reversal_reason: str | None
    reversed_at: datetime | None
    exceptions: list[ReconException]


@dataclass(frozen=True)
class _Paid:
    id: str
    envelope_id: str
    amount_minor: int
    currency: str
    program: str
    account: str
    shipped: bool


def statement_entries(ws: Workspace, statement_id: str) -> list[dict[str, Any]]:
    """The statement's D and RD entries from the lake: debits first, then reversals, each in file order."""
    table = BANK_STATEMENT_ENTRIES.name
    with ws.lake.connect(table) as con:
        rows = con.execute(
            f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM lake_{table} "
            "WHERE statement_id = ? AND direction IN ('D', 'RD') ORDER BY direction = 'RD', sequence",
            [statement_id],
        ).fetchall()
    return [dict(zip(_ENTRY_COLUMNS, r, strict=True)) for r in rows]


def reconcile(ws: Workspace, statement_id: str, actor: str) -> ReconOutcome:
    """Reconcile an accepted statement (see the module doc); NotFound if it was not accepted."""
    with ws.lock("g2p_statement_recon"):
        with ws.read_engine.connect() as conn:
            if (
                conn.execute(
                    select(g2p_statements.c.statement_id).where(g2p_statements.c.statement_id == statement_id)
                ).first()
                is None
            ):
                raise NotFound(f"statement_id: no accepted statement {statement_id!r}")
        entries = statement_entries(ws, statement_id)
        now = datetime.now(UTC)
        with ws.engine.begin() as conn:
            added = _apply(conn, statement_id, entries, actor, now)
        _credit_reversals(ws, statement_id)
        with ws.engine.begin() as conn:
            return _record_counts(conn, statement_id, actor, added, now)


def _apply(conn: Connection, statement_id: str, entries: list[dict], actor: str, now: datetime) -> int:
    """Record the entries not recorded before; the number recorded."""
    done = _recorded_sequences(conn, statement_id)
    todo = [e for e in entries if e["sequence"] not in done]
    refs = sorted({e["customer_reference"] for e in todo if e["customer_reference"]})
    paid = _disbursements(conn, refs)
    recons = _recons(conn, sorted(paid))
    remitted, reversed_, errors = [], [], []
    for e in todo:
        d = paid.get(e["customer_reference"] or "")
        code, detail = _check(e, d, recons.get(d.id) if d else None)
        if code is not None:
            errors.append(_exception_row(statement_id, e, code, detail, now))
        elif e["direction"] == "D":
            recons[d.id] = {
                "disbursement_id": d.id,
                "envelope_id": d.envelope_id,
                "remittance_statement_id": statement_id,
                "remittance_entry_sequence": e["sequence"],
                "remittance_bank_reference": e["bank_reference"],
                "remittance_entry_date": e["entry_date"],
                "remittance_value_date": e["value_date"],
                "reconciled_at": now,
                "reversed_at": None,
            }
            remitted.append(recons[d.id])
        else:
            reason = _reversal_reason(e["details"])
            recons[d.id] = {**recons[d.id], "reversed_at": now}
            reversed_.append(
                {
                    "d_id": d.id,
                    "envelope_id": d.envelope_id,
                    "reversal_statement_id": statement_id,
                    "reversal_entry_sequence": e["sequence"],
                    "reversal_entry_date": e["entry_date"],
                    "reversal_value_date": e["value_date"],
                    "reversal_reason": reason,
                    "reversed_at": now,
                }
            )
    _lock_envelopes(conn, {r["envelope_id"] for r in remitted + reversed_})
    insert_rows(
        conn, g2p_disbursement_recons, [{k: v for k, v in r.items() if k != "reversed_at"} for r in remitted]
    )
    insert_rows(conn, g2p_recon_errors, errors)
    _mark_disbursements(conn, remitted, reversed_, now)
    _move_counters(conn, remitted, reversed_, now)
    audit.record_many(
        conn,
        [
            {
                "entity_id": r["disbursement_id"],
                "action": "reconciled",
                "after": {"statement_id": statement_id, "entry_sequence": r["remittance_entry_sequence"]},
            }
            for r in remitted
        ]
        + [
            {
                "entity_id": r["d_id"],
                "action": "reversed",
                "reason": r["reversal_reason"],
                "after": {"statement_id": statement_id, "entry_sequence": r["reversal_entry_sequence"]},
            }
            for r in reversed_
        ],
        actor=actor,
        entity_type="g2p_disbursement",
        at=now,
    )
    return len(remitted) + len(reversed_) + len(errors)


def _check(e: dict, d: _Paid | None, recon: dict | None) -> tuple[str | None, str]:
    """(exception code, detail) of an entry, or (None, '') when it reconciles."""
    ref, seq = e["customer_reference"], e["sequence"]
    if d is None or d.account != e["account"]:
        return (
            codes.INVALID_DISBURSEMENT_ID,
            f"entry {seq}: reference {ref!r} is no disbursement of account {e['account']!r}",
        )
    if e["direction"] == "D" and recon is not None:
        return (
            DUPLICATE_DISBURSEMENT,
            f"entry {seq}: disbursement {ref} was already remitted (statement "
            f"{recon['remittance_statement_id'][:12]}, entry "
            f"{recon['remittance_entry_sequence']})",
        )
    if e["direction"] == "RD" and recon is None:
        return INVALID_REVERSAL, f"entry {seq}: reversal of disbursement {ref}, whose remittance was not seen"
    if e["direction"] == "RD" and recon["reversed_at"] is not None:
        return INVALID_REVERSAL, f"entry {seq}: disbursement {ref} was already reversed"
    if e["currency"] != d.currency:
        return (
            codes.INVALID_DISBURSEMENT_CURRENCY_CODE,
            f"entry {seq}: currency {e['currency']!r} is not the disbursement's {d.currency!r}",
        )
    if e["amount_minor"] != d.amount_minor:
        return (
            codes.INVALID_DISBURSEMENT_AMOUNT,
            f"entry {seq}: amount {e['amount_minor']} (minor units) is "
            f"not the disbursement's {d.amount_minor}",
        )
    if e["direction"] == "D" and not d.shipped:
        return DISBURSEMENT_NOT_SHIPPED, f"entry {seq}: disbursement {ref} was not shipped"
    return None, ""


def _reversal_reason(details: str | None) -> str | None:
    """The return reason of a structured `:86:` (`/RTRN/...`), else the last line of the entry's information
    (the example bank's convention)."""
    found = _RETURN_REASON.search((details or "").replace("\n", ""))
    if found:
        return found.group(1)
    lines = [line.strip() for line in (details or "").splitlines() if line.strip()]
    return lines[-1] if lines else None


def _exception_row(statement_id: str, e: dict, code: str, detail: str, now: datetime) -> dict:
    return {
        "statement_id": statement_id,
        "entry_sequence": e["sequence"],
        "direction": e["direction"],
        "entry_date": e["entry_date"],
        "value_date": e["value_date"],
        "amount_minor": e["amount_minor"],
        "currency": e["currency"],
        "error_code": code,
        "detail": detail,
        "disbursement_id": (e["customer_reference"] or None) and e["customer_reference"][:128],
        "bank_reference": (e["bank_reference"] or None) and e["bank_reference"][:128],
        "created_at": now,
    }


def _recorded_sequences(conn: Connection, statement_id: str) -> set[int]:
    r, x = g2p_disbursement_recons.c, g2p_recon_errors.c
    return {
        *conn.scalars(select(r.remittance_entry_sequence).where(r.remittance_statement_id == statement_id)),
        *conn.scalars(select(r.reversal_entry_sequence).where(r.reversal_statement_id == statement_id)),
        *conn.scalars(select(x.entry_sequence).where(x.statement_id == statement_id)),
    }


def _chunks(values: list) -> list[list]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def _disbursements(conn: Connection, ids: list[str]) -> dict[str, _Paid]:
    d, e, p = g2p_disbursements.c, g2p_envelopes.c, g2p_programs.c
    query = (
        select(
            d.id,
            d.envelope_id,
            d.amount_minor,
            e.currency,
            e.program,
            p.sponsor_account,
            d.shipped_at.is_not(None),
        )
        .join_from(g2p_disbursements, g2p_envelopes, e.id == d.envelope_id)
        .join(g2p_programs, p.mnemonic == e.program)
    )
    return {r[0]: _Paid(*r) for chunk in _chunks(ids) for r in conn.execute(query.where(d.id.in_(chunk)))}


def _recons(conn: Connection, ids: list[str]) -> dict[str, dict]:
    r = g2p_disbursement_recons.c
    return {
        row.disbursement_id: dict(row._mapping)
        for chunk in _chunks(ids)
        for row in conn.execute(select(g2p_disbursement_recons).where(r.disbursement_id.in_(chunk)))
    }


def _lock_envelopes(conn: Connection, envelope_ids: set[str]) -> None:
    """Row locks on the envelopes whose counters move, in id order (no deadlock between two runs)."""
    for env in sorted(envelope_ids):
        conn.execute(select(g2p_envelopes.c.id).where(g2p_envelopes.c.id == env).with_for_update())


def _mark_disbursements(conn: Connection, remitted: list[dict], reversed_: list[dict], now: datetime) -> None:
    d = g2p_disbursements.c
    for chunk in _chunks([r["disbursement_id"] for r in remitted]):
        conn.execute(
            update(g2p_disbursements)
            .where(d.id.in_(chunk))
            .values(status="RECONCILED", reconciled_at=now, updated_at=now)
        )
    if reversed_:
        conn.execute(
            update(g2p_disbursements)
            .where(d.id == bindparam("d_id"))
            .values(
                status="REVERSED",
                reversed_at=now,
                reversal_reason=bindparam("reversal_reason"),
                updated_at=now,
            ),
            [{"d_id": r["d_id"], "reversal_reason": r["reversal_reason"]} for r in reversed_],
        )
        r = g2p_disbursement_recons.c
        columns = (
            "reversal_statement_id",
            "reversal_entry_sequence",
            "reversal_entry_date",
            "reversal_value_date",
            "reversal_reason",
            "reversed_at",
        )
        conn.execute(
            update(g2p_disbursement_recons)
            .where(r.disbursement_id == bindparam("d_id"))
            .values({c: bindparam(c) for c in columns}),
            [{"d_id": x["d_id"], **{c: x[c] for c in columns}} for x in reversed_],
        )


def _move_counters(conn: Connection, remitted: list[dict], reversed_: list[dict], now: datetime) -> None:
    plus = Counter(r["envelope_id"] for r in remitted)
    back = Counter(r["envelope_id"] for r in reversed_)
    e = g2p_envelopes.c
    for env in sorted(plus.keys() | back.keys()):
        conn.execute(
            update(g2p_envelopes)
            .where(e.id == env)
            .values(
                reconciled_count=e.reconciled_count + plus[env] - back[env],
                reversed_count=e.reversed_count + back[env],
                updated_at=now,
            )
        )


def _credit_reversals(ws: Workspace, statement_id: str) -> None:
    """Post the reversals this statement recorded to the ledger (again: a posted entry id is a no-op)."""
    r, d, e = g2p_disbursement_recons.c, g2p_disbursements.c, g2p_envelopes.c
    with ws.engine.connect() as conn:
        rows = conn.execute(
            select(d.id, d.amount_minor, e.currency, e.program, r.reversal_reason)
            .join_from(g2p_disbursement_recons, g2p_disbursements, d.id == r.disbursement_id)
            .join(g2p_envelopes, e.id == d.envelope_id)
            .where(r.reversal_statement_id == statement_id)
            .order_by(d.id)
        ).all()
    entries = [
        Entry(
            "ADJUSTMENT",
            f"g2p-reversal:{x.id}",
            f"g2p:{x.program}",
            x.currency,
            x.amount_minor,
            REVERSAL_ENTRY_TYPE,
            f"reversal of disbursement {x.id}: {x.reversal_reason or 'no reason'}",
        )
        for x in rows
    ]
    post_entries(ws, entries, ingest_id=f"g2p-recon-{statement_id}")


def _record_counts(
    conn: Connection, statement_id: str, actor: str, added: int, now: datetime
) -> ReconOutcome:
    r, x, s = g2p_disbursement_recons.c, g2p_recon_errors.c, g2p_statements.c
    counts = {
        "remittances": conn.scalar(select(func.count()).where(r.remittance_statement_id == statement_id)),
        "reversals": conn.scalar(select(func.count()).where(r.reversal_statement_id == statement_id)),
        "exceptions": conn.scalar(select(func.count()).where(x.statement_id == statement_id)),
    }
    conn.execute(
        update(g2p_statements).where(s.statement_id == statement_id).values(**counts, reconciled_at=now)
    )
    entries = conn.scalar(select(s.entries).where(s.statement_id == statement_id))
    audit.record(
        conn,
        actor=actor,
        entity_type="g2p_statement",
        entity_id=statement_id,
        action="reconcile",
        after={**counts, "added": added},
    )
    return ReconOutcome(statement_id, entries, added=added, **counts)


def exceptions(ws: Workspace, statement_id: str) -> list[ReconException]:
    """A statement's recon exceptions in entry order."""
    x = g2p_recon_errors.c
    with ws.read_engine.connect() as conn:
        rows = conn.execute(
            select(*(x[f] for f in ReconException.__dataclass_fields__))
            .where(x.statement_id == statement_id)
            .order_by(x.entry_sequence)
        )
        return [ReconException(*row) for row in rows]


def disbursement_recons(ws: Workspace, disbursement_ids: list[str]) -> dict[str, DisbursementRecon]:
    """For `get_disbursement_status`: each disbursement's recon record and the exceptions naming it."""
    r, x = g2p_disbursement_recons.c, g2p_recon_errors.c
    with ws.read_engine.connect() as conn:
        found = {
            row.disbursement_id: row._mapping
            for chunk in _chunks(disbursement_ids)
            for row in conn.execute(select(g2p_disbursement_recons).where(r.disbursement_id.in_(chunk)))
        }
        errors: dict[str, list[ReconException]] = {}
        for chunk in _chunks(disbursement_ids):
            query = (
                select(*(x[f] for f in ReconException.__dataclass_fields__))
                .where(x.disbursement_id.in_(chunk))
                .order_by(x.created_at, x.statement_id, x.entry_sequence)
            )
            for row in conn.execute(query):
                errors.setdefault(row.disbursement_id, []).append(ReconException(*row))
    fields = [f for f in DisbursementRecon.__dataclass_fields__ if f not in ("disbursement_id", "exceptions")]
    return {
        i: DisbursementRecon(
            i, **{f: found[i][f] if i in found else None for f in fields}, exceptions=errors.get(i, [])
        )
        for i in disbursement_ids
    }

