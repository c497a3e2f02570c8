"""Schema migrations match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from db.models import Base
from db.session import get_engine


def test_upgrade_head_on_empty_database_matches_models(db_url):
    # db_url is a fresh database that `alembic upgrade head` just created.
    with get_engine(db_url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
