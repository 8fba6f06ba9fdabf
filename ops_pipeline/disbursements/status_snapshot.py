"""The lake's daily `disbursement_status` snapshots and their checks (plain Python; the Dagster asset in
`assets/disbursements/status.py` calls these).

A day's snapshot holds the disbursements of the envelopes scheduled on that day (their disbursement day),
as they stand when it is taken; taking it again appends a newer snapshot that supersedes the earlier one.
Checks: each envelope's counters agree with its rows (shipped = reconciled + pending + reversed), and the
program's ledger account moved as the sponsor bank's statements say for the day's disbursements.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select

from ops_pipeline.db.schema import g2p_disbursements, g2p_envelopes, g2p_recon_errors, g2p_statements
from ops_pipeline.lake.tables import BALANCE_OPERATIONS, BANK_STATEMENT_ENTRIES, DISBURSEMENT_STATUS
from ops_pipeline.ledger.snapshots import CheckResult
from ops_pipeline.workspace import Workspace

_EXAMPLES = 10


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    day: date
    rows: pa.Table
    envelopes: dict[str, dict[str, int]]  # envelope id -> its counters when the rows were read
    lake_version: int


def recon_state(status: str, shipped_at: datetime | None, reconciled_at: datetime | None,
                reversed_at: datetime | None) -> str:
    """reversed, reconciled, pending (shipped, on no statement yet) or not_shipped (as the analyst view)."""
    if reversed_at is not None:
        return "reversed"
    if reconciled_at is not None:
        return "reconciled"
    return "pending" if shipped_at is not None else "not_shipped"


def take_snapshot(ws: Workspace, day: date) -> Snapshot:
    """Append the day's disbursement statuses to the lake as one new snapshot (one Delta commit)."""
    d, e = g2p_disbursements.c, g2p_envelopes.c
    with ws.engine.connect() as conn, conn.begin():  # rows and counters read in one transaction
        envelopes = {
            r.id: {"shipped": r.shipped_count, "reconciled": r.reconciled_count, "reversed": r.reversed_count}
            for r in conn.execute(select(e.id, e.shipped_count, e.reconciled_count, e.reversed_count)
                                  .where(e.schedule_date == day))
        }
        found = conn.execute(
            select(d.id, d.envelope_id, d.batch_id, e.program, e.currency, d.beneficiary_id, d.amount_minor,
                   d.status, d.latest_error, d.cancelled, d.shipped_at, d.reconciled_at, d.reversed_at,
                   d.reversal_reason)
            .join(g2p_envelopes, e.id == d.envelope_id)
            .where(e.schedule_date == day)
            .order_by(d.envelope_id, d.id)
        ).all()
    snapshot_id, now = str(uuid.uuid4()), datetime.now(UTC)
    columns = {name: [] for name in DISBURSEMENT_STATUS.schema.names}
    for r in found:
        values = {"snapshot_id": snapshot_id, "snapshot_at": now, "disbursement_id": r.id,
                  "recon_state": recon_state(r.status, r.shipped_at, r.reconciled_at, r.reversed_at),
                  "status_date": day, **{k: v for k, v in r._mapping.items() if k != "id"}}
        for name in columns:
            columns[name].append(values[name])
    rows = pa.table(columns, schema=DISBURSEMENT_STATUS.schema)
    version = ws.lake.append(DISBURSEMENT_STATUS.name, rows)
    return Snapshot(snapshot_id, day, rows, envelopes, version)


def check_counters(snapshot: Snapshot) -> CheckResult:
    """Per envelope of the day: shipped = reconciled + pending + reversed, each count as its rows say."""
    states: dict[str, Counter] = defaultdict(Counter)
    for env, state in zip(snapshot.rows["envelope_id"].to_pylist(), snapshot.rows["recon_state"].to_pylist(),
                          strict=True):
        states[env][state] += 1
    bad = []
    for env, counters in sorted(snapshot.envelopes.items()):
        rows = states[env]
        shipped_rows = sum(rows[s] for s in ("reconciled", "pending", "reversed"))
        got = {"shipped": shipped_rows, "reconciled": rows["reconciled"], "reversed": rows["reversed"]}
        if got != counters:
            got["pending"] = rows["pending"]
            bad.append({"envelope_id": env, "counters": counters, "rows": got})
    n = len(snapshot.envelopes)
    described = (f"{n} envelopes of {snapshot.day}: counters agree with their rows" if not bad else
                 f"{len(bad)} of {n} envelopes of {snapshot.day}: counters differ from their rows "
                 "(shipped = reconciled + pending + reversed)")
    return CheckResult(not bad, described, len(bad), bad[:_EXAMPLES])


def check_ledger_matches_statements(ws: Workspace, snapshot: Snapshot) -> CheckResult:
    """Per program account, over ALL the day's disbursements: the ledger's net debit (payouts less reversal
    credits) equals the statements' D less RD lines that reconciled (exceptions left out) plus what was
    shipped and is on no statement yet (pending, reported apart). A ledger movement of a disbursement the
    bank never paid (failed, unresolved) or never stated makes it fail."""
    rows = snapshot.rows
    ids = pa.table({"id": rows["disbursement_id"], "program": rows["program"], "currency": rows["currency"],
                    "amount_minor": rows["amount_minor"],
                    "pending": pc.equal(rows["recon_state"], "pending")})
    with ws.read_engine.connect() as conn:
        statements = pa.table({"statement_id": pa.array(
            conn.execute(select(g2p_statements.c.statement_id)).scalars().all(), pa.string())})
        x = g2p_recon_errors.c
        errors = conn.execute(select(x.statement_id, x.entry_sequence)).all()
    excepted = pa.table({"statement_id": pa.array([r[0] for r in errors], pa.string()),
                         "sequence": pa.array([r[1] for r in errors], pa.int64())})
    with ws.lake.connect(BALANCE_OPERATIONS.name, BANK_STATEMENT_ENTRIES.name) as con:
        for name, table in (("day_ids", ids), ("g2p_stmts", statements), ("excepted", excepted)):
            con.register(name, table)
        found = con.execute(f"""
            WITH entry_ids AS (
                SELECT id AS entry_id, program, currency FROM day_ids
                UNION ALL SELECT 'g2p-reversal:' || id, program, currency FROM day_ids),
            ledger AS (
                SELECT i.program, i.currency, -SUM(o.amount_minor) AS minor
                FROM lake_{BALANCE_OPERATIONS.name} o
                JOIN entry_ids i ON o.falcon_operation_id = i.entry_id AND o.merchant_id = 'g2p:' || i.program
                GROUP BY ALL),
            bank AS (
                SELECT i.program, i.currency,
                       SUM(CASE WHEN b.direction = 'D' THEN b.amount_minor ELSE -b.amount_minor END) AS minor
                FROM lake_{BANK_STATEMENT_ENTRIES.name} b
                JOIN g2p_stmts USING (statement_id)
                JOIN day_ids i ON i.id = b.customer_reference
                ANTI JOIN excepted x ON x.statement_id = b.statement_id AND x.sequence = b.sequence
                WHERE b.direction IN ('D', 'RD')
                GROUP BY ALL),
            pending AS (
                SELECT program, currency, SUM(amount_minor) AS minor FROM day_ids WHERE pending GROUP BY ALL),
            accounts AS (
                SELECT program, currency FROM ledger UNION SELECT program, currency FROM bank
                UNION SELECT program, currency FROM pending)
            SELECT program, currency, CAST(COALESCE(l.minor, 0) AS BIGINT),
                   CAST(COALESCE(b.minor, 0) AS BIGINT), CAST(COALESCE(p.minor, 0) AS BIGINT)
            FROM accounts LEFT JOIN ledger l USING (program, currency)
                 LEFT JOIN bank b USING (program, currency) LEFT JOIN pending p USING (program, currency)
            ORDER BY program, currency""").fetchall()
    accounts = [{"account": f"g2p:{p}", "currency": c, "ledger_debit_minor": led,
                 "statement_debit_minor": bank, "pending_minor": waiting}
                for p, c, led, bank, waiting in found]
    bad = [a for a in accounts if a["ledger_debit_minor"] != a["statement_debit_minor"] + a["pending_minor"]]
    pending = int(pc.sum(ids["pending"].cast(pa.int64())).as_py() or 0)
    described = (f"{len(accounts)} program accounts: the ledger moved as the statements say, to the minor "
                 f"unit, plus what awaits a statement ({len(rows)} disbursements of {snapshot.day}, "
                 f"{pending} shipped on no statement yet)"
                 if not bad else f"{len(bad)} program accounts: the ledger differs from the statements "
                 "and the shipped disbursements awaiting one")
    return CheckResult(not bad, described, len(bad), (bad or accounts)[:_EXAMPLES])
