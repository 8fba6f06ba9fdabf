"""Gift-card business records: principals and tenants, programs, distributors and customers, program
assignments, vouchers and their event outbox.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from ops_pipeline.db.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _record_columns() -> list[sa.Column]:
    return [
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "gc_principals",
        sa.Column("principal_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mall_id", sa.String(64)),
        sa.Column("name", sa.String(200), nullable=False),
        *_record_columns(),
    )
    op.create_index("ix_gc_principals_mall_id", "gc_principals", ["mall_id"])
    op.create_table(
        "gc_programs",
        sa.Column("program_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("restriction_state", sa.String(16), nullable=False),
        sa.Column("restriction_detail", sa.Text),
        sa.Column("restriction_at", UTCDateTime()),
        *_record_columns(),
    )
    op.create_table(
        "gc_parties",
        sa.Column("party_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("wallet_account_id", sa.String(64), nullable=False),
        sa.Column("wallet_currency", sa.String(3), nullable=False),
        *_record_columns(),
        sa.UniqueConstraint("wallet_account_id", name="uq_gc_parties_wallet_account_id"),
    )
    op.create_table(
        "gc_assignments",
        sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
        sa.Column("party_id", sa.String(64), nullable=False),
        sa.Column("program_id", sa.String(64), nullable=False),
        sa.Column("starts_on", sa.Date, nullable=False),
        sa.Column("ends_on", sa.Date),
        *_record_columns(),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_gc_assignments_program_id", "gc_assignments", ["program_id"])
    op.create_index("ix_gc_assignments_party", "gc_assignments", ["party_id", "program_id"])
    op.create_table(
        "gc_vouchers",
        sa.Column("voucher_id", sa.String(64), primary_key=True),
        sa.Column("program_id", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("face_value_minor", sa.BigInteger, nullable=False),
        sa.Column("price_paid_minor", sa.BigInteger, nullable=False),
        sa.Column("holder_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("distributed_at", UTCDateTime()),
        sa.Column("redeemed_at", UTCDateTime()),
        sa.Column("expired_at", UTCDateTime()),
        sa.Column("cancelled_at", UTCDateTime()),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_gc_vouchers_program_id", "gc_vouchers", ["program_id"])
    op.create_index("ix_gc_vouchers_holder_id", "gc_vouchers", ["holder_id"])
    op.create_table(
        "gc_voucher_events",
        sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("voucher_id", sa.String(64), nullable=False),
        sa.Column("program_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("face_value_minor", sa.BigInteger, nullable=False),
        sa.Column("price_paid_minor", sa.BigInteger, nullable=False),
        sa.Column("holder_id", sa.String(64)),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("published", sa.Boolean, nullable=False),
        sa.UniqueConstraint("event_id", name="uq_gc_voucher_events_event_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_gc_voucher_events_unpublished", "gc_voucher_events", ["published", "id"])


def downgrade() -> None:
    for table in ("gc_voucher_events", "gc_vouchers", "gc_assignments", "gc_parties", "gc_programs",
                  "gc_principals"):
        op.drop_table(table)
