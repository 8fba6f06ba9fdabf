"""Job dependencies: prerequisite ids on jobs, the count still pending, and the claim index that skips them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _where(condition: str) -> dict:
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def upgrade() -> None:
    for table in ("jobs", "jobs_archive"):
        op.add_column(table, sa.Column("depends_on", sa.JSON))
        op.add_column(table, sa.Column("waiting", sa.Integer, nullable=False, server_default="0"))
    op.drop_index("ix_jobs_claim", "jobs")
    claimable = _where("state = 'Created' AND waiting = 0")
    op.create_index("ix_jobs_claim", "jobs", ["priority", "id"], **claimable)
    op.create_index("ix_jobs_waiting", "jobs", ["id"], **_where("waiting > 0"))
    op.create_table(
        "job_dependencies",
        sa.Column("job_id", sa.BigInteger, nullable=False),
        sa.Column("prerequisite_id", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("job_id", "prerequisite_id", name="pk_job_dependencies"),
    )
    op.create_index("ix_job_dependencies_prerequisite", "job_dependencies", ["prerequisite_id"])


def downgrade() -> None:
    op.drop_table("job_dependencies")
    op.drop_index("ix_jobs_waiting", "jobs")
    op.drop_index("ix_jobs_claim", "jobs")
    op.create_index("ix_jobs_claim", "jobs", ["priority", "id"], **_where("state = 'Created'"))
    for table in ("jobs", "jobs_archive"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("waiting")
            batch.drop_column("depends_on")
