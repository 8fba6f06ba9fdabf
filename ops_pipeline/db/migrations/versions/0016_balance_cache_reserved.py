"""Balance cache: the reserved figure (`reserved_minor`, ledger.live.fold_sql) beside confirmed and settled.

The log lives in the lake, out of a migration's reach, so the cache is emptied back to version -1;
`Workspace.init`, which runs the migrations, then folds the whole log again (`balances.refresh_cache`: a
replay), reserves included.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    column = sa.Column("reserved_minor", sa.BigInteger, nullable=False, server_default="0")
    op.add_column("balance_cache", column)
    op.execute("DELETE FROM balance_cache")
    op.execute("UPDATE balance_cache_state SET applied_version = -1")


def downgrade() -> None:
    with op.batch_alter_table("balance_cache") as batch:
        batch.drop_column("reserved_minor")
