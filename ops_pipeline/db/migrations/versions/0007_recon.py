"""Reconciliation decisions: ops users' forced matches, unmatches and write-offs, applied by the next run.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from ops_pipeline.db.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recon_decisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("recon", sa.String(128), nullable=False),
        sa.Column("business_date", sa.Date, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("internal_ids", sa.JSON, nullable=False),
        sa.Column("external_ids", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_recon_decisions_recon", "recon_decisions", ["recon", "business_date", "id"])


def downgrade() -> None:
    op.drop_index("ix_recon_decisions_recon", "recon_decisions")
    op.drop_table("recon_decisions")
