"""Alembic migrations create exactly the tables the code declares, on SQLite and PostgreSQL, idempotently."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from ops_pipeline.db import make_engine, upgrade
from ops_pipeline.db.engine import MIGRATIONS
from ops_pipeline.db.schema import metadata


def test_upgrade_is_idempotent_and_matches_the_declared_schema(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    upgrade(engine)  # a second run changes nothing
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert diff == []
    assert set(metadata.tables) <= tables
    assert version == ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_schema_currency_check_reads_the_heads_alembic_reads(db_url):
    from ops_pipeline.db import is_current
    from ops_pipeline.db.engine import head_revisions

    assert head_revisions() == set(ScriptDirectory(str(MIGRATIONS)).get_heads())
    engine = make_engine(db_url)
    assert not is_current(engine)  # empty database
    upgrade(engine, "0001")
    assert not is_current(engine)  # behind the code
    upgrade(engine)
    assert is_current(engine)
    engine.dispose()
