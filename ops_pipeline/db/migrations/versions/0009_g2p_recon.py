"""G2P statement reconciliation: accepted statements, disbursement recons, recon exceptions.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from ops_pipeline.db.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "g2p_statements",
        sa.Column("statement_id", sa.String(64), primary_key=True),
        sa.Column("program", sa.String(64), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("file_name", sa.String(256), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("entries", sa.BigInteger, nullable=False),
        sa.Column("remittances", sa.BigInteger, nullable=False),
        sa.Column("reversals", sa.BigInteger, nullable=False),
        sa.Column("exceptions", sa.BigInteger, nullable=False),
        sa.Column("uploaded_by", sa.String(128), nullable=False),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.Column("reconciled_at", UTCDateTime()),
    )
    op.create_index("ix_g2p_statements_program", "g2p_statements", ["program"])
    op.create_table(
        "g2p_disbursement_recons",
        sa.Column("disbursement_id", sa.String(36), primary_key=True),
        sa.Column("envelope_id", sa.String(36), nullable=False),
        sa.Column("remittance_statement_id", sa.String(64), nullable=False),
        sa.Column("remittance_entry_sequence", sa.BigInteger, nullable=False),
        sa.Column("remittance_bank_reference", sa.String(128)),
        sa.Column("remittance_entry_date", sa.Date, nullable=False),
        sa.Column("remittance_value_date", sa.Date, nullable=False),
        sa.Column("reconciled_at", UTCDateTime(), nullable=False),
        sa.Column("reversal_statement_id", sa.String(64)),
        sa.Column("reversal_entry_sequence", sa.BigInteger),
        sa.Column("reversal_entry_date", sa.Date),
        sa.Column("reversal_value_date", sa.Date),
        sa.Column("reversal_reason", sa.Text),
        sa.Column("reversed_at", UTCDateTime()),
    )
    op.create_index("ix_g2p_disbursement_recons_envelope_id", "g2p_disbursement_recons", ["envelope_id"])
    op.create_index(
        "uq_g2p_disbursement_recons_remittance",
        "g2p_disbursement_recons",
        ["remittance_statement_id", "remittance_entry_sequence"],
        unique=True,
    )
    op.create_table(
        "g2p_recon_errors",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("statement_id", sa.String(64), nullable=False),
        sa.Column("entry_sequence", sa.BigInteger, nullable=False),
        sa.Column("direction", sa.String(2), nullable=False),
        sa.Column("entry_date", sa.Date, nullable=False),
        sa.Column("value_date", sa.Date, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("disbursement_id", sa.String(128)),
        sa.Column("bank_reference", sa.String(128)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "uq_g2p_recon_errors_entry", "g2p_recon_errors", ["statement_id", "entry_sequence"], unique=True
    )
    op.create_index("ix_g2p_recon_errors_disbursement", "g2p_recon_errors", ["disbursement_id"])


def downgrade() -> None:
    for table in ("g2p_recon_errors", "g2p_disbursement_recons", "g2p_statements"):
        op.drop_table(table)
