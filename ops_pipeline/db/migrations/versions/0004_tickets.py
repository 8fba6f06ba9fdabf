"""Ticketing: groups, agents and their memberships, tickets, the assignment history.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from ops_pipeline.db.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _where(condition: str) -> dict:
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def _stamps() -> list[sa.Column]:
    return [sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Column("updated_at", UTCDateTime(), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "ticket_groups",
        sa.Column("group_id", BIGID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("active_status", sa.Boolean, nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("group_id", name="pk_ticket_groups"),
        sqlite_autoincrement=True,
    )
    op.create_index("uq_ticket_groups_name", "ticket_groups", ["name"], unique=True)
    op.create_table(
        "ticket_agents",
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("active_status", sa.Boolean, nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("agent_id", name="pk_ticket_agents"),
    )
    op.create_table(
        "ticket_agent_groups",
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("group_id", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "group_id", name="pk_ticket_agent_groups"),
    )
    op.create_index("ix_ticket_agent_groups_group", "ticket_agent_groups", ["group_id", "agent_id"])
    op.create_table(
        "tickets",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.String(128)),
        sa.Column("agent_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("reference", sa.String(128)),
        sa.Column("description", sa.Text),
        sa.Column("created_by", sa.String(128), nullable=False),
        *_stamps(),
        sa.Column("assigned_at", UTCDateTime()),
        sa.Column("resolved_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
        sqlite_autoincrement=True,
    )
    op.create_index("uq_tickets_open_reference", "tickets", ["source", "reference"], unique=True,
                    **_where("status = 'open' AND reference IS NOT NULL"))
    op.create_index("ix_tickets_waiting", "tickets", ["group_id", "priority", "id"],
                    **_where("status = 'open' AND agent_id IS NULL"))
    op.create_index("ix_tickets_agent", "tickets", ["agent_id", "status", "id"])
    op.create_index("ix_tickets_group", "tickets", ["group_id", "status", "id"])
    op.create_index("ix_tickets_source_reference", "tickets", ["source", "reference"])
    op.create_index("ix_tickets_created", "tickets", ["created_at"])
    op.create_table(
        "ticket_assignments",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.BigInteger, nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("group_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("local_day", sa.Date, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("day_seq", sa.Integer, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_assignments"),
        sqlite_autoincrement=True,
    )
    op.create_index("uq_ticket_assignments_seq", "ticket_assignments", ["agent_id", "kind", "seq"],
                    unique=True)
    op.create_index("ix_ticket_assignments_ticket", "ticket_assignments", ["ticket_id", "id"])
    op.create_index("ix_jobs_archive_failed", "jobs_archive", ["archived_at"], **_where("state = 'Failed'"))


def downgrade() -> None:
    op.drop_index("ix_jobs_archive_failed", "jobs_archive")
    for table in ("ticket_assignments", "tickets", "ticket_agent_groups", "ticket_agents", "ticket_groups"):
        op.drop_table(table)
