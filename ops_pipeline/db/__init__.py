"""Operational database: SQLite embedded, PostgreSQL in production, one schema through Alembic."""

from ops_pipeline.db.engine import make_engine, upgrade

__all__ = ["make_engine", "upgrade"]
