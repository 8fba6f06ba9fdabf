"""Rules that depend on earlier operations: a reversal needs the operation it reverses.

A `chargeback_reversal` names its chargeback, and a `reserve_release` its reserve, by that operation's
`falcon_operation_id` in `external_reference`; the target has the same source (CO or RO), merchant and
currency, and is in the log or earlier in the same batch. Not found: `no_prior_chargeback` /
`no_prior_reserve`. The amount may not exceed what is left of the target (its amount less earlier
reversals, and for a reserve less what `ledger.reserves` gave back when due): `reversal_exceeds_chargeback`
/ `release_exceeds_reserve`. Rows of other types cost nothing here.
"""

from __future__ import annotations

import duckdb
import polars as pl

from ops_pipeline.ledger.live import LOG
from ops_pipeline.ledger.validation import combine_reasons, reasons_frame
from ops_pipeline.money import to_major
from ops_pipeline.workspace import Workspace

# reversing type -> (reversed type, reason when not found, reason when above what is left)
REVERSALS = {
    "chargeback_reversal": ("chargeback", "no_prior_chargeback", "reversal_exceeds_chargeback"),
    "reserve_release": ("reserve", "no_prior_reserve", "release_exceeds_reserve"),
}
EXPIRY = "reserve_expiry"  # given back by `ledger.reserves` under the reserve's own id
_TARGET = ("merchant_id", "currency")


def check(ws: Workspace, con: duckdb.DuckDBPyConnection, rows: pl.DataFrame, rejects: pl.DataFrame,
          source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`validate_operations`' (rows, rejections) with the reversals that break these rules rejected too."""
    asking = rows.filter(pl.col("valid") & pl.col("type").is_in(list(REVERSALS)))
    if not len(asking):
        return rows, rejects
    refs = asking["external_reference"].drop_nulls().unique()
    targets, used = _from_log(ws, con, source, refs, asking["falcon_operation_id"])
    batch_targets = rows.filter(pl.col("valid") & pl.col("falcon_operation_id").is_in(refs.implode())
                                & pl.col("type").is_in([t for t, _, _ in REVERSALS.values()]))
    targets = pl.concat([targets, batch_targets.select(
        "merchant_id", "currency", ref="falcon_operation_id", target_type="type", amount="amount_minor",
        row_number="row_number").select(targets.columns)]).group_by("ref", "target_type", *_TARGET).agg(
        pl.col("amount").first(), pl.col("row_number").min())  # a target in the log and again in the batch
    checked = (
        asking.select("row_number", "falcon_operation_id", "type", "external_reference", "merchant_id",
                      "currency", "amount_minor")
        .join(used, left_on="external_reference", right_on="ref", how="left")
        .with_columns(
            # earlier rows of this batch reversing the same target count as used
            before=pl.col("amount_minor").cum_sum().over("external_reference") - pl.col("amount_minor"),
            target_type=pl.col("type").replace_strict({k: v[0] for k, v in REVERSALS.items()}))
        .join(targets, left_on=["external_reference", "target_type", *_TARGET],
              right_on=["ref", "target_type", *_TARGET], how="left", suffix="_target")
        .filter(pl.col("row_number_target") < pl.col("row_number"))  # found, and before the reversal
    )
    reasons = reasons_frame([_reason(r) for r in checked.iter_rows(named=True)] +
                            [_missing(r) for r in asking.join(checked, on="row_number", how="anti")
                             .iter_rows(named=True)])
    reasons = reasons.filter(pl.col("reason_code").is_not_null())
    if not len(reasons):
        return rows, rejects
    refused = pl.col("row_number").is_in(reasons["row_number"].implode())
    rows = rows.with_columns(valid=pl.col("valid") & ~refused)
    return rows, combine_reasons(pl.concat([rejects, reasons]))


def _from_log(ws, con, source: str, refs: pl.Series, asking_ids: pl.Series
              ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(targets: ref, target_type, merchant_id, currency, amount, row_number 0; used: ref, used) in the log;
    reversals of the asking ids themselves (repeats of this batch) are left out of `used`."""
    con.register("reference_ids", pl.DataFrame({"ref": refs}).to_arrow())
    con.register("asking_ids", pl.DataFrame({"id": asking_ids}).to_arrow())
    log = ws.lake.relation(con, LOG)
    reversed_types = ", ".join(f"'{t}'" for t, _, _ in REVERSALS.values())
    reversing = ", ".join(f"'{t}'" for t in REVERSALS)
    found = con.sql(f"""
        SELECT CASE WHEN type IN ({reversing}) THEN external_reference ELSE falcon_operation_id END AS ref,
               type, merchant_id, currency, amount_minor
        FROM {log} WHERE source = $source AND (
            (falcon_operation_id IN (SELECT ref FROM reference_ids)
                AND type IN ({reversed_types}, '{EXPIRY}'))
            OR (external_reference IN (SELECT ref FROM reference_ids) AND type IN ({reversing})
                AND falcon_operation_id NOT IN (SELECT id FROM asking_ids)))
    """, params={"source": source}).pl()
    is_target = pl.col("type").is_in([t for t, _, _ in REVERSALS.values()])
    targets = found.filter(is_target).select(
        "ref", "merchant_id", "currency", target_type="type", amount=-pl.col("amount_minor"),
        row_number=pl.lit(0, pl.Int64))
    used = found.filter(~is_target).group_by("ref").agg(used=pl.col("amount_minor").sum())
    return targets, used


def _reason(row: dict) -> tuple[int, str | None, str]:
    """A reversal whose target was found: above what is left of it, or fine (no reason code)."""
    _, _, too_much = REVERSALS[row["type"]]
    left = row["amount"] - (row["used"] or 0) - row["before"]
    if row["amount_minor"] <= left:
        return row["row_number"], None, ""
    currency = row["currency"]
    return (row["row_number"], too_much,
            f"amount: '{to_major(row['amount_minor'], currency)}' is more than the "
            f"{to_major(left, currency)} {currency} left of {row['target_type']} "
            f"{row['external_reference']!r}")


def _missing(row: dict) -> tuple[int, str, str]:
    target, not_found, _ = REVERSALS[row["type"]]
    return (row["row_number"], not_found,
            f"external_reference: {row['external_reference']!r} names no {target} of merchant "
            f"{row['merchant_id']!r} in {row['currency']} (same source) before this {row['type']}")
