"""G2P disbursements: the financial addresses the mapper resolved (sealed).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from ops_pipeline.db.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "g2p_financial_addresses",
        sa.Column("disbursement_id", sa.String(36), primary_key=True),
        sa.Column("beneficiary_id", sa.String(128), nullable=False),
        sa.Column("fa_type", sa.String(16), nullable=False),
        sa.Column("address", sa.JSON, nullable=False),
        sa.Column("bank_code", sa.String(64)),
        sa.Column("branch_code", sa.String(64)),
        sa.Column("account_type", sa.String(32)),
        sa.Column("provider", sa.String(64)),
        sa.Column("resolved_name", sa.String(256)),
        sa.Column("resolved_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("g2p_financial_addresses")
