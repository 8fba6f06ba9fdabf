"""Payouts against the bank statement: what we paid out (fund-out and cash-out) against the debit entries
of the payout account's statement; reversals of those debits return a payout and credit the merchant.

Internal records of business date D: payouts (`fundout_payouts`: scheduled ones, manual cash-outs and
payout requests alike) whose PAYOUT ledger entry is dated D in `OPS_TIMEZONE` (the entry is posted right
after the bank paid, and its date stays put when a payout is later returned), status posted or returned.
A payout the bank paid but not yet posted joins the date it is posted. `reference` is the payout id (the
bank echoes it as the end-to-end reference).

External records: the `D` entries of `bank_statement_entries` booked D to D + `WINDOW_DAYS` (a bank books
a payout on the day or the next business days), `reference` = the entry's customer reference. Every
loaded statement counts: load only the payout account's statements into that table for this recon. Debits
whose reference is a gift-card obligation id (`GCO-...`, transfers to principals, confirmed by
`giftcards.obligations`) are no payouts and are left out.

Rules, in order (`RECON`):
- `exact`: reference, currency and amount equal: `matched`.
- `amount-differs`: reference and currency equal, any amount. A diagnostic: the engine only says "no
  match" of a record left alone, so this rule pairs a payout with its debit when only the amount differs;
  its `matched_with_difference` rows are breaks, `amount_difference_minor` the difference in minor units.
A second debit with the same reference finds its payout taken (matching is exclusive) and stays an
`unmatched_external` break, as does a debit with an unknown reference; a payout without its debit is an
`unmatched_internal` break.

Reversals (`RD` entries, money back in) are not matched here: `apply_reversals` returns the payout.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

import polars as pl
from sqlalchemy import select, true, update

from ops_pipeline import audit
from ops_pipeline.db.schema import fundout_payouts
from ops_pipeline.fundout.payouts import POSTED, RETURNED
from ops_pipeline.giftcards.obligations import PREFIX as OBLIGATION_PREFIX
from ops_pipeline.lake.tables import BALANCE_OPERATIONS, BANK_STATEMENT_ENTRIES
from ops_pipeline.ledger.adjustments import adjust
from ops_pipeline.recon import service
from ops_pipeline.recon.rules import Criteria, Recon, Rule, normalised_reference
from ops_pipeline.workspace import Workspace

WINDOW_DAYS = 2
ANY_AMOUNT = 2**63 - 1  # amounts are 64-bit minor units: every difference is within this
RECON = Recon("payouts", (
    Rule("exact", Criteria(references=("reference",))),
    Rule("amount-differs", Criteria(references=("reference",), amount_tolerance_minor=ANY_AMOUNT)),
))
CHUNK = 5000  # ids per IN (...) query

_INTERNAL = {"id": pl.String, "amount": pl.Int64, "currency": pl.String, "reference": pl.String,
             "kind": pl.String, "business_id": pl.String, "status": pl.String}
_EXTERNAL = {"id": pl.String, "amount": pl.Int64, "currency": pl.String, "reference": pl.String,
             "entry_date": pl.Date, "account": pl.String, "bank_reference": pl.String}


def _lake(ws: Workspace, table: str, query: str, params: list) -> list[tuple]:
    """Rows of `query` over the lake table `table` (named `{view}` in the query)."""
    with ws.lake.connect(table) as con:
        return con.execute(query.format(view=f"lake_{table}"), params).fetchall()


def _payouts(ws: Workspace, ids: list[str], statuses: tuple[str, ...] | None = None) -> list:
    """Payout rows by id (in `statuses` if given)."""
    p = fundout_payouts.c
    wanted = p.status.in_(statuses) if statuses else true()
    found = []
    with ws.read_engine.connect() as conn:
        for start in range(0, len(ids), CHUNK):
            found += conn.execute(select(p.id, p.kind, p.business_id, p.currency, p.amount_minor, p.status)
                                  .where(p.id.in_(ids[start:start + CHUNK]), wanted)
                                  .order_by(p.id)).all()
    return found


def records(ws: Workspace, business_date: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(internal, external) records of `business_date` for `RECON` (module docstring)."""
    start = datetime.combine(business_date, time(), ws.settings.tz)
    end = datetime.combine(business_date + timedelta(days=1), time(), ws.settings.tz)
    paid = _lake(ws, BALANCE_OPERATIONS.name,
                 "SELECT DISTINCT falcon_operation_id FROM {view} WHERE source = 'PAYOUT' "
                 "AND operation_date >= ? AND operation_date < ?",
                 [start.astimezone(UTC), end.astimezone(UTC)])
    rows = _payouts(ws, sorted(r[0] for r in paid), (POSTED, RETURNED))
    internal = pl.DataFrame([(r.id, r.amount_minor, r.currency, r.id, r.kind, r.business_id, r.status)
                             for r in rows], schema=_INTERNAL, orient="row")
    debits = _lake(ws, BANK_STATEMENT_ENTRIES.name,
                   "SELECT statement_id || ':' || sequence, amount_minor, currency, customer_reference, "
                   "entry_date, account, bank_reference FROM {view} WHERE direction = 'D' "
                   "AND entry_date BETWEEN ? AND ? AND NOT starts_with(upper(trim(coalesce("
                   "customer_reference, ''))), ?) ORDER BY statement_id, sequence",
                   [business_date, business_date + timedelta(days=WINDOW_DAYS), OBLIGATION_PREFIX])
    return internal, pl.DataFrame(debits, schema=_EXTERNAL, orient="row")


def run(ws: Workspace, business_date: date, *, actor: str, dry_run: bool = False) -> service.RunSummary:
    """Reconcile the payouts of `business_date` against the statement (see `recon.service.run`)."""
    internal, external = records(ws, business_date)
    return service.run(ws, RECON, business_date, internal, external, actor=actor, dry_run=dry_run)


@dataclass(frozen=True)
class Reversal:
    """What became of one `RD` statement entry: `returned` now, `already returned`, or a `break`."""

    entry_id: str  # statement_id:sequence
    reference: str | None
    payout_id: str | None
    amount_minor: int
    currency: str
    outcome: str
    reason: str


def _reversal_entries(ws: Workspace) -> pl.DataFrame:
    found = _lake(ws, BANK_STATEMENT_ENTRIES.name,
                  "SELECT statement_id || ':' || sequence, customer_reference, amount_minor, currency "
                  "FROM {view} WHERE direction = 'RD' ORDER BY loaded_at, statement_id, sequence", [])
    frame = pl.DataFrame(found, schema={"entry_id": pl.String, "reference": pl.String, "amount": pl.Int64,
                                        "currency": pl.String}, orient="row")
    return frame.with_columns(normalised_reference("reference").alias("key"))


def apply_reversals(ws: Workspace, actor: str) -> list[Reversal]:
    """Return the payouts the bank reversed (`RD` entries of every loaded statement): each posted payout
    whose id is an RD's reference, with the same currency and amount, gets one ADJUSTMENT entry crediting
    the merchant (entry id `reversal-<payout id>`, so posted once) and then the status `returned`, audited
    with `actor`. Anything else (unknown reference, payout not posted, amount or currency differing) is a
    break in the answer, never an error, and so is a second RD of a payout (RDs count in load order).
    Calling it again changes nothing."""
    entries = _reversal_entries(ws)
    # Banks echo our id as sent (or upper-cased); look those up, then compare normalised like the engine.
    asked = sorted({v for r in entries["reference"].drop_nulls() for v in (r.strip(), r.strip().lower())})
    rows = _payouts(ws, asked)
    keys = pl.DataFrame({"id": [r.id for r in rows]}, schema={"id": pl.String}).select(
        normalised_reference("id").alias("id"))["id"].to_list()
    by_key = dict(zip(keys, rows, strict=True))
    out, first = [], {}
    for e in entries.iter_rows(named=True):
        payout = by_key.get(e["key"]) if e["key"] else None
        reversal = Reversal(e["entry_id"], e["reference"], payout.id if payout else None, e["amount"],
                            e["currency"], "break", "")
        if payout is None:
            out.append(replace(reversal, reason=f"reference {e['reference']!r} is no payout of ours"))
        elif (payout.currency, payout.amount_minor) != (e["currency"], e["amount"]):
            out.append(replace(reversal, reason=f"payout {payout.id} is {payout.amount_minor} "
                               f"{payout.currency}, the reversal {e['amount']} {e['currency']}"))
        elif payout.status not in (POSTED, RETURNED):
            out.append(replace(reversal, reason=f"payout {payout.id} is {payout.status}, not posted"))
        elif first.setdefault(payout.id, e["entry_id"]) != e["entry_id"]:
            out.append(replace(reversal, reason=f"payout {payout.id} was reversed before by entry "
                               f"{first[payout.id]}: a second reversal"))
        else:
            out.append(_return(ws, payout, reversal, actor))
    return out


def _return(ws: Workspace, payout, reversal: Reversal, actor: str) -> Reversal:
    """Credit first (idempotent by entry id), then mark returned: a crash between the two is finished by
    the next call, and a returned payout always has its credit."""
    before = replace(reversal, outcome="already returned", reason=f"payout {payout.id} was returned before")
    if payout.status == RETURNED:
        return before
    adjust(ws, payout.business_id, payout.currency, payout.amount_minor, f"bank reversal {reversal.entry_id}",
           actor=actor, entry_id=f"reversal-{payout.id}", entry_type="payout_reversal")
    p = fundout_payouts.c
    with ws.engine.begin() as conn:
        moved = conn.execute(update(fundout_payouts).where(p.id == payout.id, p.status == POSTED)
                             .values(status=RETURNED, updated_at=datetime.now(UTC)).returning(p.id)).all()
        if not moved:  # another call returned it meanwhile
            return before
        audit.record(conn, actor=actor, entity_type="payout", entity_id=payout.id, action="returned",
                     before={"status": POSTED},
                     after={"status": RETURNED, "credit_entry": f"reversal-{payout.id}"},
                     reason=f"bank reversal {reversal.entry_id}")
    return replace(reversal, outcome="returned", reason=f"credited {payout.amount_minor} {payout.currency}")
