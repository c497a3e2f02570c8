"""Engine, sessions and schema upgrades. The caller owns the transaction:

with session_scope() as session:   # commits on success, rolls back on error
    ...
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.settings import get_settings

T = TypeVar("T")
DEADLOCK_ATTEMPTS = 3


def rlaif_home() -> Path:
    """Where the default database, model cache and training runs live (RLAIF_HOME)."""
    home = get_settings().home
    home.mkdir(parents=True, exist_ok=True)
    return home


def database_url() -> str:
    """RLAIF_DATABASE_URL, or a SQLite file under RLAIF_HOME created on first use."""
    url = get_settings().database_url
    if url:
        if url.startswith(("postgresql://", "postgres://")):
            # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url
    return f"sqlite:///{rlaif_home() / 'rlaif.db'}"


# SQLite transactions stay pysqlite's default: BEGIN (deferred) at the first write, so read-only
# sessions (the app's pages) never queue for the write lock. A writer takes that lock before it
# reads the labels it changes (db.pair_state.lock_pairs, a write), so it never recounts from a
# stale snapshot, and busy_timeout makes a second writer wait for the lock instead of failing
# with "database is locked". BEGIN IMMEDIATE for every session would serialise the readers too.
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (the app) never block the labeller
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@cache
def get_engine(url: str | None = None) -> Engine:
    url = url or database_url()
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


@cache
def _sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


def get_sessionmaker(url: str | None = None) -> sessionmaker[Session]:
    url = url or database_url()
    upgrade_database(url)
    return _sessionmaker(url)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    with get_sessionmaker(url).begin() as session:
        yield session


def is_deadlock(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) == "40P01"  # PostgreSQL deadlock_detected


def run_transaction(work: Callable[[Session], T], url: str | None = None) -> T:
    """`work(session)` in one transaction, rerun from the start when PostgreSQL aborts it to
    break a lock cycle. Writers lock pairs in ascending order within a call (db/pair_state.py),
    but an import that writes batch after batch in file order can meet another in a cycle; the
    victim is rolled back whole, so a rerun is safe when `work` only writes to the database."""
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            with session_scope(url) as session:
                return work(session)
        except DBAPIError as error:
            if not is_deadlock(error) or attempt == DEADLOCK_ATTEMPTS:
                raise
            print("another writer held the same pairs (deadlock); starting again", file=sys.stderr)
    raise AssertionError("unreachable")


def _alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


_upgraded: set[str] = set()


def upgrade_database(url: str | None = None) -> str:
    """Create or upgrade the schema to the newest migration (idempotent). Returns the revision."""
    url = url or database_url()
    if url in _upgraded:
        return "head"
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = _alembic_config(url)
    head = ScriptDirectory.from_config(config).get_current_head()
    engine = get_engine(url)
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    _upgraded.add(url)
    return head or ""


def table_names(url: str | None = None) -> list[str]:
    return sorted(inspect(get_engine(url)).get_table_names())
