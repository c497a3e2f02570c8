"""Schema migrations match the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from db.models import Base
from db.session import get_engine


def test_upgrade_head_on_empty_database_matches_models(db_url):
    # db_url is a fresh database that `alembic upgrade head` just created.
    with get_engine(db_url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path):
    """A fresh database without any migration applied."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    from tests.conftest import _fresh_postgres_database, postgres_server_url

    url, drop = _fresh_postgres_database(postgres_server_url())
    yield url
    drop()


def test_0010_gives_existing_pairs_the_ids_of_their_systems(empty_url):
    """Upgrading a database whose pairs name systems: one id per name, each pair's ids set."""
    from alembic import command
    from sqlalchemy import text

    from db.session import _alembic_config

    url = empty_url
    engine = get_engine(url)
    config = _alembic_config(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0009")
        connection.execute(
            text(
                "INSERT INTO prompts (id, text, text_hash, created_at) "
                "VALUES (1, 'q', 'h', '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO responses (id, prompt_id, text, text_hash, created_at) "
                "VALUES (1, 1, 'a', 'ha', '2026-01-01'), (2, 1, 'b', 'hb', '2026-01-01')"
            )
        )
        for pair_id, system_a, system_b in ((1, "y", "x"), (2, "x", None), (3, None, None)):
            connection.execute(
                text(
                    "INSERT INTO pairs (id, external_id, prompt_id, response_a_id, response_b_id,"
                    " source, system_a, system_b, metadata, content_hash, created_at,"
                    " human_label_count, swap_inconsistent, judge_disagreement, contradicts_human,"
                    " queue_tier,"
                    " version) VALUES (:id, :external_id, 1, 1, 2, 's', :a, :b, '{}', 'c',"
                    " '2026-01-01', 0, false, false, false, 0, 1)"
                ),
                {"id": pair_id, "external_id": str(pair_id), "a": system_a, "b": system_b},
            )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with engine.connect() as connection:
        systems = connection.execute(text("SELECT name, id FROM systems ORDER BY id")).all()
        pairs = connection.execute(
            text("SELECT id, system_a_id, system_b_id FROM pairs ORDER BY id")
        ).all()
    assert [tuple(s) for s in systems] == [("x", 1), ("y", 2)]  # in name order
    assert [tuple(p) for p in pairs] == [(1, 2, 1), (2, 1, None), (3, None, None)]
