"""Tables of the operational database (SQLAlchemy Core). Migrations in `migrations/versions` create them."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from ops_pipeline.db.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Cached balances: the log folded up to `balance_cache_state.applied_version` of the Delta log.
balance_cache = Table(
    "balance_cache",
    metadata,
    Column("merchant_id", String(64), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("confirmed_minor", BigInteger, nullable=False),
    Column("settled_minor", BigInteger, nullable=False),
    Column("entries", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

balance_cache_state = Table(
    "balance_cache_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("applied_version", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Reservations of part of a balance (fund-out, disbursements, manual holds).
ledger_holds = Table(
    "ledger_holds",
    metadata,
    Column("hold_id", String(64), primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # active | released | expired | captured
    Column("reason", Text),
    Column("reference", String(128)),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("ended_at", UTCDateTime()),
    Column("ended_by", String(128)),
    Column("end_reason", Text),
    Index("ix_ledger_holds_active", "merchant_id", "currency", "status"),
)

# Every state change of a job, ticket, config, hold or disbursement.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("before", JSON),
    Column("after", JSON),
    Column("reason", Text),
    Index("ix_audit_log_entity", "entity_type", "entity_id", "id"),
)

# One row per ledger ingest: what came in and what became of it.
ingest_runs = Table(
    "ingest_runs",
    metadata,
    Column("ingest_id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("file_name", Text, nullable=False),
    Column("file_sha256", String(64), nullable=False, index=True),
    Column("rows", BigInteger, nullable=False),
    Column("ingested", BigInteger, nullable=False),
    Column("duplicates", BigInteger, nullable=False),
    Column("quarantined", BigInteger, nullable=False),
    Column("lake_version", BigInteger),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
)
