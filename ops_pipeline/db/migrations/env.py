"""Alembic environment: runs on the connection handed in by `ops_pipeline.db.upgrade`."""

from alembic import context

from ops_pipeline.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
