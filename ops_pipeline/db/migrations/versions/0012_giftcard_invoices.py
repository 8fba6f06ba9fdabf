"""Gift-card invoices: number counters, invoices and credit notes, matched payments, reminders sent.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from ops_pipeline.db.types import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gc_invoice_counters",
        sa.Column("series", sa.String(32), primary_key=True),
        sa.Column("last_number", sa.Integer, nullable=False),
    )
    op.create_table(
        "gc_invoices",
        sa.Column("number", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("party_id", sa.String(64), nullable=False),
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("period_key", sa.String(160)),
        sa.Column("sales", sa.BigInteger, nullable=False),
        sa.Column("face_value_minor", sa.BigInteger, nullable=False),
        sa.Column("discount_minor", sa.BigInteger, nullable=False),
        sa.Column("commission_minor", sa.BigInteger, nullable=False),
        sa.Column("adjustment_minor", sa.BigInteger, nullable=False),
        sa.Column("total_minor", sa.BigInteger, nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("corrects", sa.String(32)),
        sa.Column("reason", sa.Text),
        sa.Column("issued_on", sa.Date, nullable=False),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("issued_by", sa.String(128), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("period_key", name="uq_gc_invoices_period_key"),
    )
    for column in ("party_id", "month", "corrects"):
        op.create_index(f"ix_gc_invoices_{column}", "gc_invoices", [column])
    op.create_table(
        "gc_invoice_payments",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("invoice_number", sa.String(32), nullable=False),
        sa.Column("statement_id", sa.String(64), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("value_date", sa.Date, nullable=False),
        sa.Column("reference", sa.Text),
        sa.Column("matched_by", sa.String(128), nullable=False),
        sa.Column("matched_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("statement_id", "sequence", name="uq_gc_invoice_payments_statement_id_sequence"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_gc_invoice_payments_invoice_number", "gc_invoice_payments", ["invoice_number"])
    op.create_table(
        "gc_invoice_reminders",
        sa.Column("invoice_number", sa.String(32), primary_key=True),
        sa.Column("level", sa.Integer, primary_key=True),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("gc_invoice_reminders", "gc_invoice_payments", "gc_invoices", "gc_invoice_counters"):
        op.drop_table(table)
