"""Envelopes: what a program will pay in one cycle (counts, total, schedule date), filled by batches."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ops_pipeline import audit
from ops_pipeline.db.bulk import insert_rows
from ops_pipeline.db.schema import g2p_envelope_steps, g2p_envelopes
from ops_pipeline.disbursements import codes, fields, steps
from ops_pipeline.disbursements.codes import G2PError
from ops_pipeline.disbursements.programs import find as find_program
from ops_pipeline.workspace import Workspace

FREQUENCIES = (
    "Daily",
    "Weekly",
    "Fortnightly",
    "Monthly",
    "BiMonthly",
    "Quarterly",
    "SemiAnnually",
    "Annually",
    "OnDemand",
)
PENDING_CHECK = "PENDING_CHECK"
FUNDS_BLOCK_SUCCESS = "FUNDS_BLOCK_SUCCESS"  # the funds_block step's outcome (`funds`)


@dataclass(frozen=True)
class Envelope:
    id: str
    program: str
    currency: str
    frequency: str
    cycle_code: str
    declared_beneficiaries: int
    declared_count: int
    declared_amount_minor: int
    schedule_date: date
    cancelled: bool
    cancelled_at: datetime | None
    received_count: int
    received_amount_minor: int
    shipped_count: int
    reconciled_count: int
    reversed_count: int
    funds_available: str
    funds_blocked: str
    funds_block_reference: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class EnvelopeStatus:
    envelope: Envelope
    steps: list[steps.StepState]


_AMENDABLE = ("declared_beneficiaries", "declared_count", "declared_amount_minor", "schedule_date")


def today(ws: Workspace) -> date:
    """The business date in OPS_TIMEZONE: schedule dates are compared with it."""
    return datetime.now(ws.settings.tz).date()


def create_envelope(
    ws: Workspace,
    *,
    program: Any,
    frequency: Any,
    cycle_code: Any,
    beneficiaries: Any,
    disbursements: Any,
    total: Any,
    schedule_date: Any,
    currency: Any = None,
    actor: str,
) -> Envelope:
    """A new envelope of an active program; nothing received yet, its steps PENDING."""
    mnemonic = fields.text(program, "benefit_program_mnemonic", codes.INVALID_PROGRAM_MNEMONIC, 64)
    if frequency not in FREQUENCIES:
        raise G2PError(
            codes.INVALID_DISBURSEMENT_FREQUENCY,
            f"disbursement_frequency: {fields.shown(frequency)} is not one of {', '.join(FREQUENCIES)}",
        )
    cycle = fields.text(cycle_code, "cycle_code_mnemonic", codes.INVALID_CYCLE_CODE_MNEMONIC, 64)
    n_beneficiaries = fields.count(
        beneficiaries, "number_of_beneficiaries", codes.INVALID_NO_OF_BENEFICIARIES
    )
    n_disbursements = fields.count(
        disbursements, "number_of_disbursements", codes.INVALID_NO_OF_DISBURSEMENTS
    )
    when = _schedule_date(ws, schedule_date)
    now = datetime.now(UTC)
    with ws.engine.begin() as conn:
        prog = find_program(conn, mnemonic)
        if prog is None or not prog.active:
            raise G2PError(
                codes.INVALID_PROGRAM_MNEMONIC,
                f"benefit_program_mnemonic: {mnemonic!r} is not an active benefit program",
            )
        if currency is not None and currency != prog.currency:
            raise G2PError(
                codes.INVALID_DISBURSEMENT_CURRENCY_CODE,
                f"disbursement_currency_code: {fields.shown(currency)} is not the program's "
                f"currency {prog.currency}",
            )
        amount = fields.amount(
            total,
            prog.currency,
            "total_disbursement_amount",
            codes.INVALID_TOTAL_DISBURSEMENT_AMOUNT,
            allow_zero=True,
        )
        env = Envelope(
            str(uuid.uuid4()),
            mnemonic,
            prog.currency,
            frequency,
            cycle,
            n_beneficiaries,
            n_disbursements,
            amount,
            when,
            False,
            None,
            0,
            0,
            0,
            0,
            0,
            PENDING_CHECK,
            PENDING_CHECK,
            None,
            actor,
            now,
            now,
        )
        conn.execute(insert(g2p_envelopes).values(**env.__dict__))
        insert_rows(
            conn, g2p_envelope_steps, steps.initial_rows("envelope_id", env.id, steps.ENVELOPE_STEPS, now)
        )
        audit.record(
            conn,
            actor=actor,
            entity_type="g2p_envelope",
            entity_id=env.id,
            action="create",
            after={k: _plain(v) for k, v in env.__dict__.items()},
        )
    return env


def cancel_envelope(ws: Workspace, envelope_id: Any, *, actor: str, owner: str | None = None) -> Envelope:
    """Cancel an envelope (not one already cancelled, nor one whose funds the bank has blocked: from then on
    its batches may be paying); its disbursements will not be paid.

    Nor while the `funds_block` step holds the envelope (PROCESSING, lease live): its runner may be asking
    the bank for the block, which a cancel committed meanwhile would leave blocked at the bank with nothing
    here to show it. That step checks under this same lock that the envelope is not cancelled before it
    calls the bank, so a cancel and a block never both go through."""
    with ws.engine.begin() as conn:
        env = lock(conn, envelope_id, owner)
        if env.funds_blocked == FUNDS_BLOCK_SUCCESS:
            raise G2PError(
                codes.DISBURSEMENT_ENVELOPE_FUNDS_BLOCKED,
                f"disbursement_envelope_id: the sponsor bank blocked the funds of {env.id} "
                f"(block {env.funds_block_reference}); disbursing has started and cannot be cancelled",
            )
        now = datetime.now(UTC)
        s = g2p_envelope_steps.c
        blocking = conn.execute(select(s.lease_until).where(
            s.envelope_id == env.id, s.step == "funds_block", s.status == steps.PROCESSING,
            s.lease_until > now)).scalar()
        if blocking is not None:
            raise G2PError(
                codes.DISBURSEMENT_ENVELOPE_FUNDS_BLOCKING,
                f"disbursement_envelope_id: the sponsor bank is being asked to block the funds of {env.id} "
                f"(step funds_block, lease until {blocking.isoformat()}); cancel again once that step ends",
            )
        conn.execute(
            update(g2p_envelopes)
            .where(g2p_envelopes.c.id == env.id)
            .values(cancelled=True, cancelled_at=now, updated_at=now)
        )
        audit.record(
            conn,
            actor=actor,
            entity_type="g2p_envelope",
            entity_id=env.id,
            action="cancel",
            before={"cancelled": False},
            after={"cancelled": True},
        )
        return Envelope(**{**env.__dict__, "cancelled": True, "cancelled_at": now, "updated_at": now})


def amend_envelope(
    ws: Workspace,
    envelope_id: Any,
    *,
    beneficiaries: Any = None,
    disbursements: Any = None,
    total: Any = None,
    schedule_date: Any = None,
    actor: str,
    owner: str | None = None,
) -> Envelope:
    """Change the declared counts, total or schedule date (those given), strictly before the schedule date;
    never below what was already received."""
    with ws.engine.begin() as conn:
        env = lock(conn, envelope_id, owner)
        if env.schedule_date <= today(ws):
            raise G2PError(
                codes.DISBURSEMENT_ENVELOPE_DATE_PASSED,
                f"disbursement_envelope_id: {env.id} was scheduled for {env.schedule_date}; "
                "amendments end the day before",
            )
        changes: dict[str, Any] = {}
        if beneficiaries is not None:
            changes["declared_beneficiaries"] = fields.count(
                beneficiaries, "number_of_beneficiaries", codes.INVALID_NO_OF_BENEFICIARIES
            )
        if disbursements is not None:
            changes["declared_count"] = n = fields.count(
                disbursements, "number_of_disbursements", codes.INVALID_NO_OF_DISBURSEMENTS
            )
            if n < env.received_count:
                raise G2PError(
                    codes.INVALID_NO_OF_DISBURSEMENTS,
                    f"number_of_disbursements: {n} is below the {env.received_count} already received",
                )
        if total is not None:
            changes["declared_amount_minor"] = minor = fields.amount(
                total,
                env.currency,
                "total_disbursement_amount",
                codes.INVALID_TOTAL_DISBURSEMENT_AMOUNT,
                allow_zero=True,
            )
            if minor < env.received_amount_minor:
                raise G2PError(
                    codes.INVALID_TOTAL_DISBURSEMENT_AMOUNT,
                    f"total_disbursement_amount: {fields.shown(total)} is below the amount already received",
                )
        if schedule_date is not None:
            changes["schedule_date"] = _schedule_date(ws, schedule_date)
        if not changes:
            return env
        now = datetime.now(UTC)
        conn.execute(
            update(g2p_envelopes).where(g2p_envelopes.c.id == env.id).values(**changes, updated_at=now)
        )
        audit.record(
            conn,
            actor=actor,
            entity_type="g2p_envelope",
            entity_id=env.id,
            action="amend",
            before={k: _plain(getattr(env, k)) for k in changes},
            after={k: _plain(v) for k, v in changes.items()},
        )
        return Envelope(**{**env.__dict__, **changes, "updated_at": now})


def envelope_status(ws: Workspace, envelope_id: Any, owner: str | None = None) -> EnvelopeStatus:
    with ws.read_engine.connect() as conn:
        env = get(conn, envelope_id, owner)
        rows = conn.execute(
            select(g2p_envelope_steps)
            .where(g2p_envelope_steps.c.envelope_id == env.id)
            .order_by(g2p_envelope_steps.c.created_at, g2p_envelope_steps.c.step)
        )
        order = {s: i for i, s in enumerate(steps.ENVELOPE_STEPS)}
        states = sorted((steps.state(r) for r in rows), key=lambda s: order.get(s.step, len(order)))
        return EnvelopeStatus(env, states)


def list_envelopes(ws: Workspace, program: str | None = None, limit: int = 100) -> list[Envelope]:
    query = select(g2p_envelopes).order_by(g2p_envelopes.c.created_at.desc()).limit(limit)
    if program:
        query = query.where(g2p_envelopes.c.program == program)
    with ws.read_engine.connect() as conn:
        return [Envelope(**r._mapping) for r in conn.execute(query)]


def get(conn: Connection, envelope_id: Any, owner: str | None = None, for_update: bool = False) -> Envelope:
    """The envelope; DISBURSEMENT_ENVELOPE_NOT_FOUND if it does not exist or `owner` did not create it."""
    key = fields.uuid_text(envelope_id, "disbursement_envelope_id", codes.INVALID_DISBURSEMENT_ENVELOPE_ID)
    query = select(g2p_envelopes).where(g2p_envelopes.c.id == key)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    if row is None or (owner is not None and row.created_by != owner):
        raise G2PError(codes.DISBURSEMENT_ENVELOPE_NOT_FOUND, f"disbursement_envelope_id: no envelope {key}")
    return Envelope(**row._mapping)


def lock(conn: Connection, envelope_id: Any, owner: str | None = None) -> Envelope:
    """The envelope under its row lock (PostgreSQL; SQLite's writer lock is already held), not cancelled."""
    env = get(conn, envelope_id, owner, for_update=True)
    if env.cancelled:
        raise G2PError(
            codes.DISBURSEMENT_ENVELOPE_ALREADY_CANCELED,
            f"disbursement_envelope_id: {env.id} was cancelled at {env.cancelled_at.isoformat()}",
        )
    return env


def _schedule_date(ws: Workspace, value: Any) -> date:
    when = fields.day(value, "disbursement_schedule_date", codes.INVALID_DISBURSEMENT_SCHEDULE_DATE)
    if when < today(ws):
        raise G2PError(
            codes.INVALID_DISBURSEMENT_SCHEDULE_DATE,
            f"disbursement_schedule_date: {when} is in the past (today is {today(ws)})",
        )
    return when


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value
