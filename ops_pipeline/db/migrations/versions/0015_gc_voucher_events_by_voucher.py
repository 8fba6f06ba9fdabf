"""Gift-card voucher events by voucher: a voucher's page (console, API) reads its events without a scan.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_gc_voucher_events_voucher", "gc_voucher_events", ["voucher_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_gc_voucher_events_voucher", table_name="gc_voucher_events")
