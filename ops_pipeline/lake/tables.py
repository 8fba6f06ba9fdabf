"""Arrow schemas of the Delta tables, by name; each lives at `<lake>/<area>/<name>`."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

UTC_TS = pa.timestamp("us", tz="UTC")
S = pa.string()
I64 = pa.int64()

INPUT_COLUMNS = (
    "falcon_operation_id",
    "external_reference",
    "type",
    "amount",
    "currency",
    "operation_date",
    "psp_id",
    "local_merchant_id",
    "shop_id",
)


@dataclass(frozen=True)
class TableSpec:
    area: str
    name: str
    schema: pa.Schema
    partition_by: tuple[str, ...] = ()  # Delta partition columns (e.g. a daily date)

    @property
    def path(self) -> str:
        return f"{self.area}/{self.name}"


def _raw_feed(name: str) -> TableSpec:
    fields = [pa.field(c, S) for c in INPUT_COLUMNS] + [
        pa.field("ingest_id", S, nullable=False),
        pa.field("received_at", UTC_TS, nullable=False),
        pa.field("file_name", S, nullable=False),
        pa.field("file_sha256", S, nullable=False),
        pa.field("row_number", I64, nullable=False),
    ]
    return TableSpec("raw", name, pa.schema(fields))


BALANCE_OPERATIONS = TableSpec(
    "ledger",
    "balance_operations",
    pa.schema(
        [
            pa.field("uuid", S, nullable=False),
            pa.field("external_reference", S),
            pa.field("amount_minor", I64, nullable=False),
            pa.field("currency", S, nullable=False),
            pa.field("type", S, nullable=False),
            pa.field("falcon_operation_id", S, nullable=False),
            pa.field("source", S, nullable=False),
            pa.field("operation_date", UTC_TS, nullable=False),
            pa.field("recorded_at", UTC_TS, nullable=False),
            pa.field("local_merchant_id", S),
            pa.field("shop_id", S),
            pa.field("balance_shop_id", S),
            pa.field("psp_id", S),
            pa.field("merchant_id", S, nullable=False),
            pa.field("op_key", I64, nullable=False),
            pa.field("ingest_id", S, nullable=False),
        ]
    ),
)

LEDGER_QUARANTINE = TableSpec(
    "ledger",
    "ledger_quarantine",
    pa.schema(
        [
            pa.field("quarantine_id", S, nullable=False),
            pa.field("source", S, nullable=False),
            pa.field("reason_code", S, nullable=False),
            pa.field("reason", S, nullable=False),
            pa.field("file_name", S, nullable=False),
            pa.field("file_sha256", S, nullable=False),
            pa.field("row_number", I64, nullable=False),
            pa.field("falcon_operation_id", S),
            pa.field("raw", S, nullable=False),
            pa.field("ingest_id", S, nullable=False),
            pa.field("quarantined_at", UTC_TS, nullable=False),
        ]
    ),
)

QUARANTINE_RESOLUTIONS = TableSpec(
    "ledger",
    "quarantine_resolutions",
    pa.schema(
        [
            pa.field("quarantine_id", S, nullable=False),
            pa.field("resolution", S, nullable=False),
            pa.field("ingest_id", S, nullable=False),
            pa.field("resolved_at", UTC_TS, nullable=False),
        ]
    ),
)

MERCHANT_CONTEXT = TableSpec(
    "reference",
    "merchant_context",
    pa.schema(
        [
            pa.field("psp_id", S, nullable=False),
            pa.field("local_merchant_id", S, nullable=False),
            pa.field("shop_id", S, nullable=False),
            pa.field("currency", S, nullable=False),
            pa.field("merchant_id", S, nullable=False),
            pa.field("balance_shop_id", S),
            pa.field("fee_percent_micros", I64, nullable=False),
            pa.field("fee_fixed_minor", I64, nullable=False),
            pa.field("loaded_at", UTC_TS, nullable=False),
            # operation types (ledger/split.py); absent in tables written before them: read as 0
            pa.field("dispute_fee_minor", I64),
            pa.field("reserve_percent_micros", I64),
            pa.field("reserve_days", I64),
        ]
    ),
)

BALANCE_SNAPSHOTS = TableSpec(
    "balances",
    "balance_snapshots",
    pa.schema(
        [
            pa.field("snapshot_id", S, nullable=False),
            pa.field("snapshot_at", UTC_TS, nullable=False),
            pa.field("lake_version", I64, nullable=False),
            pa.field("merchant_id", S, nullable=False),
            pa.field("currency", S, nullable=False),
            pa.field("confirmed_minor", I64, nullable=False),
            pa.field("settled_minor", I64, nullable=False),
            pa.field("held_minor", I64, nullable=False),
            pa.field("available_minor", I64, nullable=False),
        ]
    ),
)

BANK_STATEMENT_ENTRIES = TableSpec(
    "bank",
    "bank_statement_entries",
    pa.schema(
        [
            pa.field("statement_id", S, nullable=False),
            pa.field("statement_ref", S, nullable=False),
            pa.field("format", S, nullable=False),
            pa.field("account", S, nullable=False),
            pa.field("sequence", I64, nullable=False),
            pa.field("entry_date", pa.date32(), nullable=False),
            pa.field("value_date", pa.date32(), nullable=False),
            pa.field("amount_minor", I64, nullable=False),
            pa.field("currency", S, nullable=False),
            pa.field("direction", S, nullable=False),
            pa.field("customer_reference", S),
            pa.field("bank_reference", S),
            pa.field("entry_reference", S),
            pa.field("details", S),
            pa.field("raw", S, nullable=False),
            pa.field("file_name", S, nullable=False),
            pa.field("ingest_id", S, nullable=False),
            pa.field("loaded_at", UTC_TS, nullable=False),
        ]
    ),
)

# Reconciliation results, append-only: a re-run of (recon, business_date) is a newer `run_id` that supersedes
# the earlier runs of that date (`ops_pipeline.recon.store`). Amounts are integer minor units.
RECON_RESULTS = TableSpec(
    "recon",
    "recon_results",
    pa.schema(
        [
            pa.field("result_id", S, nullable=False),
            pa.field("recon", S, nullable=False),
            pa.field("business_date", pa.date32(), nullable=False),
            pa.field("internal_ids", pa.list_(S), nullable=False),
            pa.field("external_ids", pa.list_(S), nullable=False),
            pa.field("rule_id", S),
            pa.field("status", S, nullable=False),
            pa.field("internal_amount_minor", I64, nullable=False),
            pa.field("external_amount_minor", I64, nullable=False),
            pa.field("amount_difference_minor", I64, nullable=False),
            pa.field("currency", S, nullable=False),
            pa.field("reason", S, nullable=False),
            pa.field("run_id", S, nullable=False),
            pa.field("decided_by", S),
            pa.field("note", S),
            pa.field("created_at", UTC_TS, nullable=False),
        ]
    ),
)

# Every change of a gift-card voucher (ops_pipeline.giftcards.events), partitioned by the day of the change in
# OPS_TIMEZONE. Published from the operational DB's outbox: `event_id` is unique (a re-published one is a
# duplicate the view `voucher_events` drops).
VOUCHER_EVENTS = TableSpec(
    "giftcards",
    "voucher_events",
    pa.schema(
        [
            pa.field("event_id", S, nullable=False),
            pa.field("voucher_id", S, nullable=False),
            pa.field("program_id", S, nullable=False),
            pa.field("event", S, nullable=False),
            pa.field("from_status", S),
            pa.field("to_status", S, nullable=False),
            pa.field("currency", S, nullable=False),
            pa.field("face_value_minor", I64, nullable=False),
            pa.field("price_paid_minor", I64, nullable=False),
            pa.field("holder_id", S),
            pa.field("actor", S, nullable=False),
            pa.field("reason", S),
            pa.field("event_at", UTC_TS, nullable=False),
            pa.field("event_date", pa.date32(), nullable=False),
        ]
    ),
    partition_by=("event_date",),
)

# Daily snapshots of G2P disbursement statuses (ops_pipeline.disbursements.status_snapshot): the
# disbursements of the envelopes scheduled on `status_date`, as they stood at `snapshot_at`; a later snapshot
# of the same date supersedes the earlier ones (readers keep the latest `snapshot_id` per date).
DISBURSEMENT_STATUS = TableSpec(
    "disbursements",
    "disbursement_status",
    pa.schema(
        [
            pa.field("snapshot_id", S, nullable=False),
            pa.field("snapshot_at", UTC_TS, nullable=False),
            pa.field("disbursement_id", S, nullable=False),
            pa.field("envelope_id", S, nullable=False),
            pa.field("batch_id", S, nullable=False),
            pa.field("program", S, nullable=False),
            pa.field("currency", S, nullable=False),
            pa.field("beneficiary_id", S, nullable=False),
            pa.field("amount_minor", I64, nullable=False),
            pa.field("status", S, nullable=False),
            pa.field("recon_state", S, nullable=False),
            pa.field("latest_error", S),
            pa.field("cancelled", pa.bool_(), nullable=False),
            pa.field("shipped_at", UTC_TS),
            pa.field("reconciled_at", UTC_TS),
            pa.field("reversed_at", UTC_TS),
            pa.field("reversal_reason", S),
            pa.field("status_date", pa.date32(), nullable=False),
        ]
    ),
    partition_by=("status_date",),
)

# Principal portal exports (ops_pipeline.giftcards.portal_exports): one row per voucher line of an export,
# parsed with the principal's mapping; `export_id` is the SHA-256 of the file (a file loads once). Lines
# that do not parse are in `portal_quarantine` with the reason, never dropped. Repeated vouchers are marked
# at intake (`repeats_row`), so the reconciliation needs no pass over the export to find them.
PORTAL_VOUCHERS = TableSpec(
    "giftcards",
    "portal_vouchers",
    pa.schema(
        [
            pa.field("export_id", S, nullable=False),
            pa.field("principal_id", S, nullable=False),
            pa.field("export_date", pa.date32(), nullable=False),
            pa.field("row_number", I64, nullable=False),
            pa.field("voucher_id", S, nullable=False),
            pa.field("face_value_minor", I64, nullable=False),
            pa.field("currency", S, nullable=False),
            pa.field("status", S, nullable=False),
            pa.field("expiry_date", pa.date32()),
            pa.field("redeemed_at", UTC_TS),
            pa.field("repeats_row", I64),  # a voucher listed again: the row of its first line
            pa.field("times_listed", I64, nullable=False),  # lines of the export with this voucher
            pa.field("file_name", S, nullable=False),
            pa.field("loaded_at", UTC_TS, nullable=False),
        ]
    ),
)

PORTAL_QUARANTINE = TableSpec(
    "giftcards",
    "portal_quarantine",
    pa.schema(
        [
            pa.field("export_id", S, nullable=False),
            pa.field("principal_id", S, nullable=False),
            pa.field("export_date", pa.date32(), nullable=False),
            pa.field("row_number", I64, nullable=False),
            pa.field("raw", S, nullable=False),
            pa.field("reason", S, nullable=False),
            pa.field("file_name", S, nullable=False),
            pa.field("loaded_at", UTC_TS, nullable=False),
        ]
    ),
)

# Commission and discount of every gift-card sale (ops_pipeline.giftcards.commission_lines), partitioned by
# the day of the sale in OPS_TIMEZONE; a day is recomputed by overwriting its partition. Minor units.
COMMISSION_LINES = TableSpec(
    "giftcards",
    "commission_lines",
    pa.schema(
        [
            pa.field("sale_id", S, nullable=False),
            pa.field("voucher_id", S, nullable=False),
            pa.field("party_id", S, nullable=False),
            pa.field("program_id", S, nullable=False),
            pa.field("currency", S, nullable=False),
            pa.field("sold_at", UTC_TS, nullable=False),
            pa.field("face_value_minor", I64, nullable=False),
            pa.field("price_paid_minor", I64, nullable=False),
            pa.field("discount_minor", I64, nullable=False),
            pa.field("rule_key", S, nullable=False),
            pa.field("terms", S, nullable=False),
            pa.field("tier_from", I64),
            pa.field("rate_e4", I64, nullable=False),
            pa.field("flat_minor", I64, nullable=False),
            pa.field("commission_minor", I64, nullable=False),
            pa.field("sale_date", pa.date32(), nullable=False),
        ]
    ),
    partition_by=("sale_date",),
)

CONFIRMED_OPERATIONS = _raw_feed("confirmed_operations")
RECONCILED_OPERATIONS = _raw_feed("reconciled_operations")

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        CONFIRMED_OPERATIONS,
        RECONCILED_OPERATIONS,
        BALANCE_OPERATIONS,
        LEDGER_QUARANTINE,
        QUARANTINE_RESOLUTIONS,
        MERCHANT_CONTEXT,
        BALANCE_SNAPSHOTS,
        BANK_STATEMENT_ENTRIES,
        RECON_RESULTS,
        VOUCHER_EVENTS,
        DISBURSEMENT_STATUS,
        PORTAL_VOUCHERS,
        PORTAL_QUARANTINE,
        COMMISSION_LINES,
    )
}
