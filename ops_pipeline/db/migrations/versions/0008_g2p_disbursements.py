"""G2P disbursements: benefit programs, partner keys, envelopes, batches, disbursements, step states.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from ops_pipeline.db.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _step_columns() -> list[sa.Column]:
    return [
        sa.Column("step", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("latest_error", sa.Text),
        sa.Column("lease_until", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("processed_at", UTCDateTime()),
    ]


def upgrade() -> None:
    op.create_table(
        "g2p_programs",
        sa.Column("mnemonic", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sponsor_bank_code", sa.String(64), nullable=False),
        sa.Column("sponsor_account", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("sponsor_account", name="uq_g2p_programs_sponsor_account"),
    )
    op.create_table(
        "g2p_partner_keys",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("partner", sa.String(128), nullable=False),
        sa.Column("alg", sa.String(8), nullable=False),
        sa.Column("public_key_pem", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("uq_g2p_partner_keys_key", "g2p_partner_keys", ["partner", "fingerprint"], unique=True)
    op.create_table(
        "g2p_envelopes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("program", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("cycle_code", sa.String(64), nullable=False),
        sa.Column("declared_beneficiaries", sa.BigInteger, nullable=False),
        sa.Column("declared_count", sa.BigInteger, nullable=False),
        sa.Column("declared_amount_minor", sa.BigInteger, nullable=False),
        sa.Column("schedule_date", sa.Date, nullable=False),
        sa.Column("cancelled", sa.Boolean, nullable=False),
        sa.Column("cancelled_at", UTCDateTime()),
        sa.Column("received_count", sa.BigInteger, nullable=False),
        sa.Column("received_amount_minor", sa.BigInteger, nullable=False),
        sa.Column("shipped_count", sa.BigInteger, nullable=False),
        sa.Column("reconciled_count", sa.BigInteger, nullable=False),
        sa.Column("reversed_count", sa.BigInteger, nullable=False),
        sa.Column("funds_available", sa.String(24), nullable=False),
        sa.Column("funds_blocked", sa.String(24), nullable=False),
        sa.Column("funds_block_reference", sa.String(64)),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_g2p_envelopes_program", "g2p_envelopes", ["program"])
    op.create_table(
        "g2p_envelope_steps",
        sa.Column("envelope_id", sa.String(36), primary_key=True),
        *_step_columns(),
    )
    op.create_index("ix_g2p_envelope_steps_open", "g2p_envelope_steps", ["step", "status"])
    op.create_table(
        "g2p_batches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("envelope_id", sa.String(36), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("message_id", sa.String(128)),
        sa.Column("items_sha256", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_g2p_batches_envelope_id", "g2p_batches", ["envelope_id"])
    op.create_table(
        "g2p_batch_steps",
        sa.Column("batch_id", sa.String(36), primary_key=True),
        *_step_columns(),
    )
    op.create_index("ix_g2p_batch_steps_open", "g2p_batch_steps", ["step", "status"])
    op.create_table(
        "g2p_disbursements",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("envelope_id", sa.String(36), nullable=False),
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("beneficiary_id", sa.String(128), nullable=False),
        sa.Column("beneficiary_name", sa.String(256), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("narrative", sa.String(512), nullable=False),
        sa.Column("mis_reference", sa.String(128)),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("cancelled", sa.Boolean, nullable=False),
        sa.Column("cancelled_at", UTCDateTime()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("latest_error", sa.Text),
        sa.Column("shipped_at", UTCDateTime()),
        sa.Column("reconciled_at", UTCDateTime()),
        sa.Column("reversed_at", UTCDateTime()),
        sa.Column("reversal_reason", sa.Text),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_g2p_disbursements_batch_id", "g2p_disbursements", ["batch_id"])
    op.create_index("ix_g2p_disbursements_envelope", "g2p_disbursements", ["envelope_id", "id"])


def downgrade() -> None:
    for table in (
        "g2p_disbursements",
        "g2p_batch_steps",
        "g2p_batches",
        "g2p_envelope_steps",
        "g2p_envelopes",
        "g2p_partner_keys",
        "g2p_programs",
    ):
        op.drop_table(table)
