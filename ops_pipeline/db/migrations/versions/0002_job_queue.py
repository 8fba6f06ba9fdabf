"""Ops job queue: live jobs, their archive and their history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

from ops_pipeline.db.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _job_columns() -> list[sa.Column]:
    return [
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("expires_at", UTCDateTime()),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_by_kind", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("run_at", UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_expires_at", UTCDateTime()),
        sa.Column("progress", sa.JSON, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("approved_by", sa.String(128)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
    ]


def _where(condition: str) -> dict:
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        *_job_columns(),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_jobs_claim", "jobs", ["priority", "id"], **_where("state = 'Created'"))
    op.create_index("ix_jobs_lease", "jobs", ["lease_expires_at"], **_where("state = 'In Progress'"))
    op.create_index("ix_jobs_expiry", "jobs", ["expires_at"], **_where("expires_at IS NOT NULL"))
    op.create_index(
        "uq_jobs_idempotency_key", "jobs", ["idempotency_key"], unique=True,
        **_where("idempotency_key IS NOT NULL"),
    )
    op.create_index("ix_jobs_type_state", "jobs", ["type", "state"])
    op.create_table(
        "jobs_archive",
        sa.Column("id", sa.BigInteger, autoincrement=False, nullable=False),
        *_job_columns(),
        sa.Column("archived_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs_archive"),
    )
    op.create_index("ix_jobs_archive_created", "jobs_archive", ["created_at"])
    op.create_index("ix_jobs_archive_idempotency_key", "jobs_archive", ["idempotency_key"])
    op.create_table(
        "job_history",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.BigInteger, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("from_state", sa.String(24)),
        sa.Column("to_state", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_job_history"),
    )
    op.create_index("ix_job_history_job", "job_history", ["job_id", "id"])


def downgrade() -> None:
    for table in ("job_history", "jobs_archive", "jobs"):
        op.drop_table(table)
