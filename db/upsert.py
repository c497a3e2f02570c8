"""INSERT ... ON CONFLICT for SQLite and PostgreSQL, the two dialects we support."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def upsert(
    session: Session | Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    update: Sequence[str] = (),
) -> None:
    """Insert rows; on a key conflict update `update` columns (or do nothing when empty).
    Through a session, or a bare connection (a column default has only that)."""
    if not rows:
        return
    bind = session.get_bind() if isinstance(session, Session) else session
    dialect = bind.dialect.name
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
    statement = insert(table)
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={col: statement.excluded[col] for col in update}
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    session.execute(statement, list(rows))


def chunked(items: Sequence[Any], size: int = 500):
    for start in range(0, len(items), size):
        yield items[start : start + size]
