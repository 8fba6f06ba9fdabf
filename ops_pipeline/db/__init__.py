"""Operational database: SQLite embedded, PostgreSQL in production, one schema through Alembic."""

from ops_pipeline.db.engine import is_current, make_engine, upgrade

__all__ = ["is_current", "make_engine", "upgrade"]
