"""The ledger's fold rule and what is live now (entries after a version, active holds), without polars:
shared by the balance reads and the analyst views (`ops-pipeline sql` starts without polars)."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
from sqlalchemy import Connection, and_, func, or_, select

from ops_pipeline.db.schema import ledger_holds
from ops_pipeline.lake.tables import BALANCE_OPERATIONS
from ops_pipeline.ledger import RESERVE_TYPES
from ops_pipeline.workspace import Workspace

LOG = BALANCE_OPERATIONS.name
FOLD_COLUMNS = ["merchant_id", "currency", "source", "type", "amount_minor"]
_RESERVE = ", ".join(f"'{t}'" for t in RESERVE_TYPES)


def fold_sql(relation: str, where: str = "TRUE") -> str:
    """Confirmed = CO + PAYOUT + ADJUSTMENT; settled = RO + PAYOUT + ADJUSTMENT (ARCHITECTURE section 5);
    reserved = minus the reserve entries on the settled side (an operation's CO and RO both carry its
    reserve: summing both would count it twice), money already out of settled."""
    return f"""
        SELECT merchant_id, currency,
               coalesce(sum(amount_minor) FILTER (WHERE source <> 'RO'), 0)::BIGINT AS confirmed_minor,
               coalesce(sum(amount_minor) FILTER (WHERE source <> 'CO'), 0)::BIGINT AS settled_minor,
               (-coalesce(sum(amount_minor) FILTER (WHERE source <> 'CO' AND type IN ({_RESERVE})), 0)
               )::BIGINT AS reserved_minor,
               count(*)::BIGINT AS entries
        FROM {relation} WHERE {where}
        GROUP BY merchant_id, currency
    """


def active_holds(now: datetime):
    return and_(
        ledger_holds.c.status == "active",
        or_(ledger_holds.c.expires_at.is_(None), ledger_holds.c.expires_at > now),
    )


def changes_since(ws: Workspace, version: int) -> tuple[int, pa.Table]:
    """The log's latest version and the entries committed after `version` (FOLD_COLUMNS only)."""
    latest = ws.lake.latest_version(LOG)
    return latest, ws.lake.changes(LOG, version, latest, FOLD_COLUMNS)


def held_all(conn: Connection, now: datetime) -> pa.Table:
    """Active holds per (merchant, currency) at `now`."""
    h = ledger_holds.c
    rows = conn.execute(select(h.merchant_id, h.currency, func.sum(h.amount_minor))
                        .where(active_holds(now)).group_by(h.merchant_id, h.currency)).all()
    return pa.table({"merchant_id": pa.array([r[0] for r in rows], pa.string()),
                     "currency": pa.array([r[1] for r in rows], pa.string()),
                     "held_minor": pa.array([int(r[2]) for r in rows], pa.int64())})
