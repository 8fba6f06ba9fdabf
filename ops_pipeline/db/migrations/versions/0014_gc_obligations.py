"""Gift cards: obligations to principals (what is owed, its transfer and confirmation).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from ops_pipeline.db.types import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gc_obligations",
        sa.Column("obligation_id", sa.String(40), primary_key=True),
        sa.Column("principal_id", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("vouchers", sa.BigInteger, nullable=False),
        sa.Column("gross_minor", sa.BigInteger, nullable=False),
        sa.Column("commission_minor", sa.BigInteger, nullable=False),
        sa.Column("discount_minor", sa.BigInteger, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("commission_percent", sa.String(16), nullable=False),
        sa.Column("discount_percent", sa.String(16), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("transfer_id", sa.String(64)),
        sa.Column("statement_entry", sa.String(100)),
        sa.Column("note", sa.Text),
        sa.Column("paid_at", UTCDateTime()),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("uq_gc_obligations_period", "gc_obligations",
                    ["principal_id", "period_start", "period_end", "currency"], unique=True)
    op.create_index("ix_gc_obligations_status", "gc_obligations", ["status"])


def downgrade() -> None:
    op.drop_table("gc_obligations")
