"""Payments of invoices: incoming credits (C lines) of the loaded bank statements (`bank_statement_entries`)
matched to invoices by reference and amount, aging of what is unpaid, reminders of overdue invoices.

A credit pays the invoice whose number (INV-YYYY-NNNNNN) its references or details name, in the invoice's
currency, for at most what is outstanding (partial payments add up); a credit naming no invoice, another
currency, or more than is outstanding is left for ops (`Matching.unmatched`). An entry pays at most once.
Reminders go through the outbox, at most once per invoice and level: level 1 when past due, 2 from 30 and 3
from 60 days past due; an invoice already at a higher level does not get the lower ones afterwards. Each goes
to the webhook, and by e-mail to the party's contact e-mail when its record has one (opened from the sealed
record only to address the mail).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ops_pipeline import audit
from ops_pipeline.crypto import cipher
from ops_pipeline.db.bulk import insert_rows
from ops_pipeline.db.schema import gc_invoice_payments, gc_invoice_reminders
from ops_pipeline.giftcards import invoices, records
from ops_pipeline.giftcards.kinds import PARTIES
from ops_pipeline.jobqueue.jobtypes.base import open_sensitive
from ops_pipeline.lake.tables import BANK_STATEMENT_ENTRIES
from ops_pipeline.money import to_major
from ops_pipeline.notify.outbox import Notification, enqueue
from ops_pipeline.workspace import Workspace

NUMBER = re.compile(r"\bINV-\d{4}-\d{6}\b")
BUCKETS = ((0, 30, "0-30"), (31, 60, "31-60"), (61, 90, "61-90"), (91, None, ">90"))
REMINDER_LEVELS = ((60, 3), (30, 2), (1, 1))  # (days past due at least, level), highest first
_TABLE = BANK_STATEMENT_ENTRIES.name


@dataclass(frozen=True)
class Matching:
    matched: int = 0
    amount_minor: dict[str, int] = field(default_factory=dict)  # per currency
    unmatched: list[dict] = field(default_factory=list)  # entries left for ops, with the reason


@dataclass(frozen=True)
class AgingRow:
    currency: str
    bucket: str
    invoices: int
    outstanding_minor: int


def _credits(ws: Workspace, conn: Connection) -> list[dict]:
    """Credit entries not matched yet that name an invoice number, oldest first."""
    done = set(conn.execute(select(gc_invoice_payments.c.statement_id, gc_invoice_payments.c.sequence)).all())
    with ws.lake.connect(_TABLE) as con:
        rows = con.sql(f"""
            SELECT * FROM (
                SELECT statement_id, sequence, amount_minor, currency, value_date,
                       concat_ws(' ', customer_reference, entry_reference, bank_reference, details)
                       AS reference
                FROM lake_{_TABLE} WHERE direction = 'C')
            WHERE regexp_matches(reference, 'INV-[0-9]{{4}}-')
            ORDER BY value_date, statement_id, sequence""").fetchall()
    keys = ("statement_id", "sequence", "amount_minor", "currency", "value_date", "reference")
    return [dict(zip(keys, r, strict=True)) for r in rows if (r[0], r[1]) not in done]


def match(ws: Workspace, actor: str) -> Matching:
    """Match the new credits to invoices, each payment audited with what is left outstanding."""
    now = datetime.now(UTC)
    payments, trail, unmatched, amounts = [], [], [], {}
    with ws.engine.begin() as conn:
        credits = _credits(ws, conn)
        open_ = {i.number: i for i in invoices.open_invoices(conn)} if credits else {}
        outstanding = {n: i.outstanding_minor for n, i in open_.items()}
        for credit in credits:
            found = NUMBER.findall(credit["reference"])
            number = next((n for n in found if n in open_), None)
            if number is None:
                reason = f"no open invoice among {', '.join(found) or 'the references'}"
            elif open_[number].currency != credit["currency"]:
                reason = f"{number} is in {open_[number].currency}, the credit in {credit['currency']}"
            elif credit["amount_minor"] > outstanding[number]:
                reason = (
                    f"{credit['amount_minor']} is more than the {outstanding[number]} outstanding on {number}"
                )
            else:
                reason = None
            if reason:
                unmatched.append({**credit, "reason": reason})
                continue
            outstanding[number] -= credit["amount_minor"]
            amounts[credit["currency"]] = amounts.get(credit["currency"], 0) + credit["amount_minor"]
            payments.append({"invoice_number": number, **credit, "matched_by": actor, "matched_at": now})
            trail.append(
                {
                    "entity_id": number,
                    "action": "payment",
                    "after": {
                        "statement_id": credit["statement_id"],
                        "sequence": credit["sequence"],
                        "amount_minor": credit["amount_minor"],
                        "value_date": credit["value_date"].isoformat(),
                        "outstanding_minor": outstanding[number],
                    },
                }
            )
        insert_rows(conn, gc_invoice_payments, payments)
        audit.record_many(conn, trail, actor=actor, entity_type=invoices.ENTITY)
    return Matching(len(payments), amounts, unmatched)


def bucket(age_days: int) -> str:
    return next(name for low, high, name in BUCKETS if age_days >= low and (high is None or age_days <= high))


def aging(ws: Workspace, on: date) -> list[AgingRow]:
    """Unpaid invoices issued by `on`, by days since their issue date, per currency."""
    with ws.read_engine.connect() as conn:
        unpaid = [i for i in invoices.open_invoices(conn) if i.issued_on <= on]
    rows: dict[tuple[str, str], list[int]] = {}
    for i in unpaid:
        acc = rows.setdefault((i.currency, bucket((on - i.issued_on).days)), [0, 0])
        acc[0] += 1
        acc[1] += i.outstanding_minor
    order = [name for _, _, name in BUCKETS]
    return [
        AgingRow(c, b, n, amount)
        for (c, b), (n, amount) in sorted(rows.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1])))
    ]


def remind(ws: Workspace, on: date, actor: str) -> list[tuple[str, int]]:
    """Send the reminders due on `on` (at most one per invoice and level); the (invoice, level) sent."""
    sent, box = [], cipher(ws.settings)
    with ws.engine.begin() as conn:
        reminded = {}
        for number, level in conn.execute(
            select(gc_invoice_reminders.c.invoice_number, gc_invoice_reminders.c.level)
        ).all():
            reminded[number] = max(level, reminded.get(number, 0))
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        for i in invoices.open_invoices(conn):
            overdue = (on - i.due_on).days
            level = next((lv for days, lv in REMINDER_LEVELS if overdue >= days), 0)
            if level <= reminded.get(i.number, 0):
                continue
            claimed = conn.execute(
                dialect_insert(gc_invoice_reminders)
                .values(invoice_number=i.number, level=level, sent_at=datetime.now(UTC))
                .on_conflict_do_nothing(index_elements=["invoice_number", "level"])
            ).rowcount
            if not claimed:
                continue
            amount = to_major(i.outstanding_minor, i.currency)
            party = records.find(conn, PARTIES, i.party_id)
            contact = open_sensitive(party.details, PARTIES.sensitive, box).get("contact")
            enqueue(
                conn,
                [
                    Notification(
                        event="giftcards.invoice_overdue",
                        subject=f"Reminder {level}: invoice {i.number} of {i.party_id}, "
                        f"{amount} {i.currency} overdue {overdue} days",
                        payload={
                            "invoice": i.number,
                            "party_id": i.party_id,
                            "level": level,
                            "due_on": i.due_on.isoformat(),
                            "outstanding": str(amount),
                            "currency": i.currency,
                            "days_overdue": overdue,
                        },
                        email=(contact or {}).get("email"),
                        entity_type=invoices.ENTITY,
                        entity_id=i.number,
                    )
                ],
            )
            audit.record(
                conn,
                actor=actor,
                entity_type=invoices.ENTITY,
                entity_id=i.number,
                action="remind",
                after={"level": level, "days_overdue": overdue, "outstanding_minor": i.outstanding_minor},
            )
            sent.append((i.number, level))
    return sent
