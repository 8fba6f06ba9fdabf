"""Tables of the operational database (SQLAlchemy Core). Migrations in `migrations/versions` create them."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
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
    Column("reserved_minor", BigInteger, nullable=False, server_default="0"),  # settled side (ledger.live)
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


# -- ops job queue -----------------------------------------------------------------------------------


def _job_columns() -> list[Column]:
    """Columns shared by the live queue and its archive."""
    return [
        Column("type", String(64), nullable=False),
        Column("attributes", JSON, nullable=False),
        Column("priority", SmallInteger, nullable=False),  # 1 High, 2 Medium, 3 Low: claim order is ascending
        Column("state", String(24), nullable=False),
        Column("expires_at", UTCDateTime()),
        Column("created_by", String(128), nullable=False),
        Column("created_by_kind", String(16), nullable=False),  # person | service | rule
        Column("idempotency_key", String(200)),
        Column("attempts", Integer, nullable=False),
        Column("max_attempts", Integer, nullable=False),
        Column("run_at", UTCDateTime(), nullable=False),  # not claimed before (retry backoff)
        Column("lease_owner", String(128)),
        Column("lease_expires_at", UTCDateTime()),
        Column("progress", JSON, nullable=False),  # action name -> result, so retries skip done actions
        Column("last_error", Text),
        Column("approved_by", String(128)),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        Column("started_at", UTCDateTime()),
        Column("finished_at", UTCDateTime()),
        Column("depends_on", JSON),  # prerequisite job ids (also in `job_dependencies`), or NULL
        # How many prerequisites have not Completed yet: claimable at 0 only.
        Column("waiting", Integer, nullable=False, default=0, server_default="0"),
    ]


jobs = Table(
    "jobs",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    *_job_columns(),
    # Claim order (High first, then oldest) over claimable rows only: Created, no prerequisite pending.
    Index(
        "ix_jobs_claim",
        "priority",
        "id",
        postgresql_where=text("state = 'Created' AND waiting = 0"),
        sqlite_where=text("state = 'Created' AND waiting = 0"),
    ),
    # Jobs waiting for prerequisites: what the housekeeping sweep re-checks.
    Index(
        "ix_jobs_waiting",
        "id",
        postgresql_where=text("waiting > 0"),
        sqlite_where=text("waiting > 0"),
    ),
    Index(
        "ix_jobs_lease",
        "lease_expires_at",
        postgresql_where=text("state = 'In Progress'"),
        sqlite_where=text("state = 'In Progress'"),
    ),
    Index(
        "ix_jobs_expiry",
        "expires_at",
        postgresql_where=text("expires_at IS NOT NULL"),
        sqlite_where=text("expires_at IS NOT NULL"),
    ),
    # One live job per idempotency key; finished jobs leave this table.
    Index(
        "uq_jobs_idempotency_key",
        "idempotency_key",
        unique=True,
        postgresql_where=text("idempotency_key IS NOT NULL"),
        sqlite_where=text("idempotency_key IS NOT NULL"),
    ),
    Index("ix_jobs_type_state", "type", "state"),
    sqlite_autoincrement=True,  # ids are never reused, though finished rows leave the table
)

jobs_archive = Table(
    "jobs_archive",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    *_job_columns(),
    Column("archived_at", UTCDateTime(), nullable=False),
    Index("ix_jobs_archive_created", "created_at"),
    Index("ix_jobs_archive_archived", "archived_at", "state"),  # jobs finished per hour (the console)
    Index("ix_jobs_archive_idempotency_key", "idempotency_key"),
)

job_history = Table(
    "job_history",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("job_id", BigInteger, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("from_state", String(24)),
    Column("to_state", String(24), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text),
    Index("ix_job_history_job", "job_id", "id"),
)

# Job `job_id` runs only after `prerequisite_id` Completed; kept after both finish (retries re-check them).
job_dependencies = Table(
    "job_dependencies",
    metadata,
    Column("job_id", BigInteger, primary_key=True),
    Column("prerequisite_id", BigInteger, primary_key=True),
    Index("ix_job_dependencies_prerequisite", "prerequisite_id"),
)


# -- notifications -----------------------------------------------------------------------------------

# Transactional outbox: written in the same transaction as the state change it reports.
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("event", String(64), nullable=False),  # e.g. fundout.paid, fundout.failed, ops.alert
    Column("channel", String(16), nullable=False),  # email | webhook
    Column("recipient", String(320)),  # email address; webhooks go to OPS_WEBHOOK_URL
    Column("subject", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("entity_type", String(32)),
    Column("entity_id", String(128)),
    Column("status", String(16), nullable=False),  # pending | sent | unsent | dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime()),
    Column("last_error", Text),
    Index(
        "ix_outbox_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
    Index("ix_outbox_entity", "entity_type", "entity_id"),
)

# The notification audit: every delivery attempt of an outbox row.
notification_attempts = Table(
    "notification_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("outbox_id", BigInteger, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("target", String(512)),
    Column("ok", Boolean, nullable=False),
    Column("detail", Text),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_notification_attempts_outbox", "outbox_id", "id"),
)


# -- auto fund-out -----------------------------------------------------------------------------------

fundout_configs = Table(
    "fundout_configs",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("business_id", String(64), nullable=False, unique=True),
    Column("freq_type", String(1), nullable=False),  # H | D | W | M
    Column("day", SmallInteger),  # W: 0-6 (0 = Sunday); M: 1-31; else NULL
    Column("hour", SmallInteger, nullable=False),
    Column("minimum_balance_milli", BigInteger, nullable=False),  # thousandths of a major unit
    Column("timezone", String(64), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("notify_email", String(320)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(128), nullable=False),
)

# One row per hourly slot: the batch that ran it (or reported it missed).
fundout_batches = Table(
    "fundout_batches",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("slot", UTCDateTime(), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # queued | running | done | missed
    Column("triggered_by", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("summary", JSON, nullable=False),  # counts paid/skipped/failed/pending, amounts per currency
)

# One row per payout: its id is the hold id, the ledger entry id and the bank's idempotency key.
fundout_payouts = Table(
    "fundout_payouts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(16), nullable=False),  # scheduled | manual
    Column("business_id", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("slot", UTCDateTime()),  # scheduled payouts only
    Column("batch_id", BigInteger),
    Column("amount_minor", BigInteger, nullable=False),
    # held | sending | unknown | paid | posted | failed | returned (reversed by the bank after posting)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("bank_payout_id", String(64)),
    Column("error", Text),
    Column("requested_by", String(128), nullable=False),
    Column("idempotency_key", String(200), unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # Exactly once per (business, currency, slot): the row is the claim.
    Index("uq_fundout_payouts_slot", "business_id", "currency", "slot", unique=True),
    Index("ix_fundout_payouts_batch", "batch_id", "status"),
    Index("ix_fundout_payouts_batch_id", "batch_id", "id"),  # a batch's payouts in pages (the console)
    Index(
        "ix_fundout_payouts_open",
        "status",
        postgresql_where=text("status NOT IN ('posted', 'failed')"),
        sqlite_where=text("status NOT IN ('posted', 'failed')"),
    ),
)


# -- ticketing ---------------------------------------------------------------------------------------

ticket_groups = Table(
    "ticket_groups",
    metadata,
    Column("group_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("active_status", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("uq_ticket_groups_name", "name", unique=True),
    sqlite_autoincrement=True,
)

ticket_agents = Table(
    "ticket_agents",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("active_status", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

ticket_agent_groups = Table(
    "ticket_agent_groups",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("group_id", BigInteger, primary_key=True),
    Index("ix_ticket_agent_groups_group", "group_id", "agent_id"),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("group_id", BigInteger, nullable=False),
    Column("user_id", String(128)),
    Column("agent_id", String(64)),
    Column("status", String(16), nullable=False),  # open | resolved
    Column("priority", Integer, nullable=False),  # 1 most urgent
    Column("source", String(32), nullable=False),  # manual | job | manual_job | run_failure | reconciliation
    Column("reference", String(128)),  # the job id, run id, ... the ticket is about
    Column("description", Text),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("assigned_at", UTCDateTime()),
    Column("resolved_at", UTCDateTime()),
    # Never two open tickets for the same thing.
    Index(
        "uq_tickets_open_reference",
        "source",
        "reference",
        unique=True,
        postgresql_where=text("status = 'open' AND reference IS NOT NULL"),
        sqlite_where=text("status = 'open' AND reference IS NOT NULL"),
    ),
    # Tickets waiting for an agent, in the order they get one.
    Index(
        "ix_tickets_waiting",
        "group_id",
        "priority",
        "id",
        postgresql_where=text("status = 'open' AND agent_id IS NULL"),
        sqlite_where=text("status = 'open' AND agent_id IS NULL"),
    ),
    Index("ix_tickets_agent", "agent_id", "status", "id"),
    Index("ix_tickets_group", "group_id", "status", "id"),
    Index("ix_tickets_source_reference", "source", "reference"),
    Index("ix_tickets_created", "created_at"),
    # Open tickets per group and agent (the console's overview), from the index alone.
    Index(
        "ix_tickets_open_load",
        "group_id",
        "agent_id",
        postgresql_where=text("status = 'open'"),
        sqlite_where=text("status = 'open'"),
    ),
    sqlite_autoincrement=True,
)

# Assignment history: one row per assignment, unassignment and resolution, never updated. `seq` numbers an
# agent's rows of one kind (its n-th assignment ever), `day_seq` those of `local_day` (OPS_TIMEZONE); the
# unique index keeps both dense, so the latest row of a kind gives the agent's counters in one probe.
ticket_assignments = Table(
    "ticket_assignments",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("ticket_id", BigInteger, nullable=False),
    Column("agent_id", String(64), nullable=False),
    Column("group_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # assigned | unassigned | resolved
    Column("at", UTCDateTime(), nullable=False),
    Column("local_day", Date, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("day_seq", Integer, nullable=False),
    Column("actor", String(128), nullable=False),
    Index("uq_ticket_assignments_seq", "agent_id", "kind", "seq", unique=True),
    Index("ix_ticket_assignments_ticket", "ticket_id", "id"),
    sqlite_autoincrement=True,
)

# Failed jobs in the order they failed: what the ticket source scans.
Index(
    "ix_jobs_archive_failed",
    jobs_archive.c.archived_at,
    postgresql_where=text("state = 'Failed'"),
    sqlite_where=text("state = 'Failed'"),
)

# Console sign-in: one-time links printed by `ops-pipeline console-login`, and browser sessions. Only the
# SHA-256 of each token is stored: a copy of the database signs nobody in.
console_logins = Table(
    "console_logins",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("sub", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("sub", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("csrf", String(64), nullable=False),  # the synchronizer token every form of the session carries
    Column("via", String(16), nullable=False),  # link | token
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
    Column("flash", Text),  # the outcome of the last action, shown once on the next page
)

# Reconciliation decisions of ops users (match, unmatch, write_off a break), in the order taken (`id`); the
# next run of (recon, business_date) applies them (`ops_pipeline.recon`).
recon_decisions = Table(
    "recon_decisions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("recon", String(128), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("action", String(16), nullable=False),  # match | unmatch | write_off
    Column("internal_ids", JSON, nullable=False),
    Column("external_ids", JSON, nullable=False),
    Column("note", Text, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_recon_decisions_recon", "recon", "business_date", "id"),
    sqlite_autoincrement=True,
)


# -- G2P disbursements (OpenG2P Bridge, cash mode) ---------------------------------------------------

# A configured benefit program: envelopes name it by mnemonic; its sponsor account pays in its currency.
g2p_programs = Table(
    "g2p_programs",
    metadata,
    Column("mnemonic", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("sponsor_bank_code", String(64), nullable=False),
    Column("sponsor_account", String(64), nullable=False, unique=True),
    Column("currency", String(3), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Public keys partners sign request bodies with (detached JWS); a partner may have several (rotation).
g2p_partner_keys = Table(
    "g2p_partner_keys",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("partner", String(128), nullable=False),  # the bearer token's `sub`
    Column("alg", String(8), nullable=False),  # RS256 | ES256
    Column("public_key_pem", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of the DER public key
    Column("active", Boolean, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("uq_g2p_partner_keys_key", "partner", "fingerprint", unique=True),
    sqlite_autoincrement=True,
)

g2p_envelopes = Table(
    "g2p_envelopes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("program", String(64), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("frequency", String(16), nullable=False),
    Column("cycle_code", String(64), nullable=False),
    Column("declared_beneficiaries", BigInteger, nullable=False),
    Column("declared_count", BigInteger, nullable=False),
    Column("declared_amount_minor", BigInteger, nullable=False),
    Column("schedule_date", Date, nullable=False),
    Column("cancelled", Boolean, nullable=False),
    Column("cancelled_at", UTCDateTime()),
    # Counters, changed only under the envelope's row lock.
    Column("received_count", BigInteger, nullable=False),
    Column("received_amount_minor", BigInteger, nullable=False),
    Column("shipped_count", BigInteger, nullable=False),
    Column("reconciled_count", BigInteger, nullable=False),
    Column("reversed_count", BigInteger, nullable=False),
    # Outcomes of the envelope steps (their states are in g2p_envelope_steps):
    # PENDING_CHECK | FUNDS_AVAILABLE | FUNDS_NOT_AVAILABLE;
    # PENDING_CHECK | FUNDS_BLOCK_SUCCESS | FUNDS_BLOCK_FAILURE
    Column("funds_available", String(24), nullable=False),
    Column("funds_blocked", String(24), nullable=False),
    Column("funds_block_reference", String(64)),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)


def _step_columns() -> list[Column]:
    """A step's state: PENDING, PROCESSING (claimed until `lease_until`), PROCESSED or ERROR."""
    return [
        Column("step", String(32), primary_key=True),
        Column("status", String(16), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("latest_error", Text),
        Column("lease_until", UTCDateTime()),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        Column("processed_at", UTCDateTime()),
    ]


# Per envelope and step (funds_check, funds_block); later kinds of step are new rows, not new columns.
g2p_envelope_steps = Table(
    "g2p_envelope_steps",
    metadata,
    Column("envelope_id", String(36), primary_key=True),
    *_step_columns(),
    Index("ix_g2p_envelope_steps_open", "step", "status"),
)

# One per create_disbursements call.
g2p_batches = Table(
    "g2p_batches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("envelope_id", String(36), nullable=False, index=True),
    Column("count", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("message_id", String(128)),  # the request's: a retried call returns this batch
    Column("items_sha256", String(64), nullable=False),  # what the call carried, to tell a retry from a reuse
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# The batch control: per batch and step (fa_resolution, disburse, notify).
g2p_batch_steps = Table(
    "g2p_batch_steps",
    metadata,
    Column("batch_id", String(36), primary_key=True),
    *_step_columns(),
    Index("ix_g2p_batch_steps_open", "step", "status"),
)

g2p_disbursements = Table(
    "g2p_disbursements",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("envelope_id", String(36), nullable=False),
    Column("batch_id", String(36), nullable=False, index=True),
    Column("beneficiary_id", String(128), nullable=False),
    Column("beneficiary_name", String(256), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("narrative", String(512), nullable=False),
    Column("mis_reference", String(128)),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("cancelled", Boolean, nullable=False),
    Column("cancelled_at", UTCDateTime()),
    # RECEIVED | RESOLVED | SHIPPED | FAILED | RECONCILED | REVERSED (the steps move it on)
    Column("status", String(16), nullable=False),
    Column("latest_error", Text),
    Column("shipped_at", UTCDateTime()),
    Column("reconciled_at", UTCDateTime()),
    Column("reversed_at", UTCDateTime()),
    Column("reversal_reason", Text),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_g2p_disbursements_envelope", "envelope_id", "id"),
)

# -- G2P statement reconciliation (sponsor account statements against disbursements) ---------------------

# A statement of a program's sponsor account, accepted for reconciliation (its entries are in the lake's
# `bank_statement_entries`); the counts are those of its latest reconciliation.
g2p_statements = Table(
    "g2p_statements",
    metadata,
    Column("statement_id", String(64), primary_key=True),  # SHA-256 of the file (the intake's id)
    Column("program", String(64), nullable=False, index=True),
    Column("account", String(64), nullable=False),
    Column("file_name", String(256), nullable=False),
    Column("format", String(8), nullable=False),
    Column("entries", BigInteger, nullable=False),
    Column("remittances", BigInteger, nullable=False),  # D lines reconciled
    Column("reversals", BigInteger, nullable=False),  # RD lines applied
    Column("exceptions", BigInteger, nullable=False),
    Column("uploaded_by", String(128), nullable=False),
    Column("uploaded_at", UTCDateTime(), nullable=False),
    Column("reconciled_at", UTCDateTime()),
)

# A disbursement's remittance (the D line that reconciled it) and its reversal (the RD line), each named by
# the statement entry (statement id, entry sequence).
g2p_disbursement_recons = Table(
    "g2p_disbursement_recons",
    metadata,
    Column("disbursement_id", String(36), primary_key=True),
    Column("envelope_id", String(36), nullable=False, index=True),
    Column("remittance_statement_id", String(64), nullable=False),
    Column("remittance_entry_sequence", BigInteger, nullable=False),
    Column("remittance_bank_reference", String(128)),
    Column("remittance_entry_date", Date, nullable=False),
    Column("remittance_value_date", Date, nullable=False),
    Column("reconciled_at", UTCDateTime(), nullable=False),
    Column("reversal_statement_id", String(64)),
    Column("reversal_entry_sequence", BigInteger),
    Column("reversal_entry_date", Date),
    Column("reversal_value_date", Date),
    Column("reversal_reason", Text),
    Column("reversed_at", UTCDateTime()),
    Index("uq_g2p_disbursement_recons_remittance", "remittance_statement_id", "remittance_entry_sequence",
          unique=True),
)

# Statement entries that reconcile nothing: DUPLICATE_DISBURSEMENT, INVALID_REVERSAL, INVALID_DISBURSEMENT_ID,
# INVALID_DISBURSEMENT_AMOUNT, INVALID_DISBURSEMENT_CURRENCY_CODE, DISBURSEMENT_NOT_SHIPPED; one per entry.
g2p_recon_errors = Table(
    "g2p_recon_errors",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("statement_id", String(64), nullable=False),
    Column("entry_sequence", BigInteger, nullable=False),
    Column("direction", String(2), nullable=False),
    Column("entry_date", Date, nullable=False),
    Column("value_date", Date, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("error_code", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("disbursement_id", String(128)),  # the entry's reference, as the bank wrote it
    Column("bank_reference", String(128)),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("uq_g2p_recon_errors_entry", "statement_id", "entry_sequence", unique=True),
    Index("ix_g2p_recon_errors_disbursement", "disbursement_id"),
)


# -- gift-card business (ops_pipeline.giftcards) ------------------------------------------------------


def _record_columns() -> list[Column]:
    """What every gift-card record keeps: its details as sealed JSON (UPI VPAs, bank details, contacts
    encrypted), an optimistic version, who made and last changed it."""
    return [
        Column("status", String(16), nullable=False),
        Column("details", JSON, nullable=False),
        Column("version", Integer, nullable=False),
        Column("created_by", String(128), nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_by", String(128), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
    ]


# Brands and mall owners, and mall tenants (`mall_id` names the mall's principal).
gc_principals = Table(
    "gc_principals",
    metadata,
    Column("principal_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # brand | mall | tenant
    Column("mall_id", String(64), index=True),
    Column("name", String(200), nullable=False),
    *_record_columns(),
)

# Gift-card programs; the bank restriction state of their VPA list: pending | pushed | failed.
gc_programs = Table(
    "gc_programs",
    metadata,
    Column("program_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("restriction_state", String(16), nullable=False),
    Column("restriction_detail", Text),
    Column("restriction_at", UTCDateTime()),
    *_record_columns(),
)

# Distributors and B2B customers; the wallet is the ledger merchant account `wallet_account_id`.
gc_parties = Table(
    "gc_parties",
    metadata,
    Column("party_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # distributor | customer
    Column("name", String(200), nullable=False),
    Column("wallet_account_id", String(64), nullable=False, unique=True),
    Column("wallet_currency", String(3), nullable=False),
    *_record_columns(),
)

# Which party sells which program, on what terms, from when to when (`ends_on` set by unassign).
gc_assignments = Table(
    "gc_assignments",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("party_id", String(64), nullable=False),
    Column("program_id", String(64), nullable=False, index=True),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date),
    *_record_columns(),  # status: active | ended
    Index("ix_gc_assignments_party", "party_id", "program_id"),
    sqlite_autoincrement=True,
)

# Vouchers: status issued | distributed | redeemed | expired | cancelled, with the time of each.
gc_vouchers = Table(
    "gc_vouchers",
    metadata,
    Column("voucher_id", String(64), primary_key=True),
    Column("program_id", String(64), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("face_value_minor", BigInteger, nullable=False),
    Column("price_paid_minor", BigInteger, nullable=False),
    Column("holder_id", String(64), index=True),  # the distributor or customer
    Column("status", String(16), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("distributed_at", UTCDateTime()),
    Column("redeemed_at", UTCDateTime()),
    Column("expired_at", UTCDateTime()),
    Column("cancelled_at", UTCDateTime()),
    Column("version", Integer, nullable=False),
    Column("updated_by", String(128), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Voucher events waiting for (or already in) the Delta table `voucher_events`: written in the voucher's
# transaction, published after it, so a crash in between loses no event.
gc_voucher_events = Table(
    "gc_voucher_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("voucher_id", String(64), nullable=False),
    Column("program_id", String(64), nullable=False),
    Column("event", String(16), nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("face_value_minor", BigInteger, nullable=False),
    Column("price_paid_minor", BigInteger, nullable=False),
    Column("holder_id", String(64)),
    Column("actor", String(128), nullable=False),
    Column("reason", Text),
    Column("at", UTCDateTime(), nullable=False),
    Column("published", Boolean, nullable=False),
    Index("ix_gc_voucher_events_unpublished", "published", "id"),
    Index("ix_gc_voucher_events_voucher", "voucher_id", "id"),  # a voucher's events
    sqlite_autoincrement=True,
)


# The financial address the mapper resolved for a disbursement (fa_resolution step). The account number,
# mobile number or e-mail address is sealed (encrypted, with a masked form); bank codes are not secret.
g2p_financial_addresses = Table(
    "g2p_financial_addresses",
    metadata,
    Column("disbursement_id", String(36), primary_key=True),
    Column("beneficiary_id", String(128), nullable=False),
    Column("fa_type", String(16), nullable=False),  # BANK_ACCOUNT | MOBILE_WALLET | EMAIL_WALLET
    Column("address", JSON, nullable=False),  # {"enc": <Fernet token>, "masked": ...}
    Column("bank_code", String(64)),
    Column("branch_code", String(64)),
    Column("account_type", String(32)),
    Column("provider", String(64)),
    Column("resolved_name", String(256)),
    Column("resolved_at", UTCDateTime(), nullable=False),
)


# -- gift-card obligations to principals (ops_pipeline.giftcards.obligations) ----------------------------

# What is owed to a principal for a period in one currency: redeemed face value less commission and
# discount; status open -> transfer_requested -> sent -> paid, or failed (paid again from transfer_requested).
gc_obligations = Table(
    "gc_obligations",
    metadata,
    Column("obligation_id", String(40), primary_key=True),  # also the bank transfer's reference
    Column("principal_id", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("vouchers", BigInteger, nullable=False),
    Column("gross_minor", BigInteger, nullable=False),
    Column("commission_minor", BigInteger, nullable=False),
    Column("discount_minor", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("commission_percent", String(16), nullable=False),
    Column("discount_percent", String(16), nullable=False),
    Column("status", String(24), nullable=False),
    Column("attempt", Integer, nullable=False),  # transfers requested so far
    Column("job_id", BigInteger),
    Column("transfer_id", String(64)),
    Column("statement_entry", String(100)),  # statement_id:sequence of the matching D line
    Column("note", Text),  # why it is failed or not yet paid
    Column("paid_at", UTCDateTime()),
    Column("version", Integer, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(128), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("uq_gc_obligations_period", "principal_id", "period_start", "period_end", "currency", unique=True),
    Index("ix_gc_obligations_status", "status"),
)


# -- gift-card portal reconciliation (ops_pipeline.giftcards.portal_mapping) ----------------------------

# How a principal's portal export reads: one mapping per principal (format, columns, status values, date
# format, decimal separator), in `details`; versioned and audited like the other gift-card records.
gc_portal_mappings = Table(
    "gc_portal_mappings",
    metadata,
    Column("principal_id", String(64), primary_key=True),
    Column("format", String(8), nullable=False),  # csv | xlsx
    *_record_columns(),
)


# -- gift-card invoices and their payments (ops_pipeline.giftcards.invoices, invoice_payments) ---------------

# The last number given in a series (e.g. INV-2026); incremented in the transaction that issues the document.
gc_invoice_counters = Table(
    "gc_invoice_counters",
    metadata,
    Column("series", String(32), primary_key=True),
    Column("last_number", Integer, nullable=False),
)

# Invoices (commissions of a distributor's month) and credit notes (negative totals, `corrects` the invoice),
# never updated once issued. `period_key` (party/month/currency) makes a month's invoice unique.
gc_invoices = Table(
    "gc_invoices",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),  # invoice | credit_note
    Column("party_id", String(64), nullable=False, index=True),
    Column("month", Date, nullable=False, index=True),  # first day of the month invoiced
    Column("currency", String(3), nullable=False),
    Column("period_key", String(160), unique=True),
    Column("sales", BigInteger, nullable=False),
    Column("face_value_minor", BigInteger, nullable=False),
    Column("discount_minor", BigInteger, nullable=False),
    Column("commission_minor", BigInteger, nullable=False),
    Column("adjustment_minor", BigInteger, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("lines", JSON, nullable=False),  # per program: sales, face value, discount, commission, adjustment
    Column("corrects", String(32), index=True),
    Column("reason", Text),
    Column("issued_on", Date, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("issued_by", String(128), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
)

# Incoming credits of bank statements matched to invoices: one statement entry pays at most one invoice.
gc_invoice_payments = Table(
    "gc_invoice_payments",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("invoice_number", String(32), nullable=False, index=True),
    Column("statement_id", String(64), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("value_date", Date, nullable=False),
    Column("reference", Text),
    Column("matched_by", String(128), nullable=False),
    Column("matched_at", UTCDateTime(), nullable=False),
    UniqueConstraint("statement_id", "sequence"),
    sqlite_autoincrement=True,
)

# Reminders sent for overdue invoices: one per invoice and level.
gc_invoice_reminders = Table(
    "gc_invoice_reminders",
    metadata,
    Column("invoice_number", String(32), primary_key=True),
    Column("level", Integer, primary_key=True),
    Column("sent_at", UTCDateTime(), nullable=False),
)
