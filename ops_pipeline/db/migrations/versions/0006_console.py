"""Console sign-in: one-time login links and browser sessions (tokens stored only as SHA-256 hashes); jobs
finished per hour and open tickets per group and agent for the console's overview (index-only scans), and a
batch's payouts in pages (`fundout_payouts (batch_id, id)`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from ops_pipeline.db.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_logins",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("sub", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime()),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("sub", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime()),
        sa.Column("flash", sa.Text),
    )
    op.create_index("ix_jobs_archive_archived", "jobs_archive", ["archived_at", "state"])
    op.create_index("ix_tickets_open_load", "tickets", ["group_id", "agent_id"],
                    postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))
    op.create_index("ix_fundout_payouts_batch_id", "fundout_payouts", ["batch_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_fundout_payouts_batch_id", "fundout_payouts")
    op.drop_index("ix_tickets_open_load", "tickets")
    op.drop_index("ix_jobs_archive_archived", "jobs_archive")
    op.drop_table("console_sessions")
    op.drop_table("console_logins")
