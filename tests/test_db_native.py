"""The API's asyncpg reader reaches PostgreSQL the way the SQLAlchemy engine does, from the same URL."""

import pytest

from ops_pipeline.db.native import connect_args
from ops_pipeline.errors import InvalidInput


def test_the_url_settings_carry_over_and_unknown_ones_are_refused():
    args = connect_args("postgresql+psycopg2://ops:s3cret@db.internal:6432/ops?options=-csearch_path%3Dtenant_a"
                        "&sslmode=verify-full&connect_timeout=5&application_name=ops-api")
    assert args == {"host": "db.internal", "port": 6432, "user": "ops", "password": "s3cret", "database": "ops",
                    "server_settings": {"search_path": "tenant_a", "application_name": "ops-api"},
                    "ssl": "verify-full", "timeout": 5.0}
    with pytest.raises(InvalidInput, match="query key 'target_session_attrs' is not supported"):
        connect_args("postgresql+psycopg2://ops@db/ops?target_session_attrs=read-write")
