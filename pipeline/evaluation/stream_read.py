"""Reading a million-row stream of integers out of the database fast: the win rates' and the
leaderboard's per-pair rows (outcomes.py).

At a million rows the cost is not the query but the Python objects the DBAPI builds, one per
value (about 0.5 s a column through `sqlite3`). So every column is an integer, and the
database joins each column's values into one comma-separated string (`group_concat` /
`string_agg`) that numpy parses in a few milliseconds. And the rows are cut into ranges of
the judgments' ids read in parallel, each on its own connection: `sqlite3` releases the GIL
while a statement runs, and an aggregate runs whole inside one step; PostgreSQL 15 runs
`string_agg` in one backend, so a part per connection is a backend per core.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sqlalchemy import BigInteger, ColumnElement, Connection, FromClause, Text, cast, func, select
from sqlalchemy.orm import Session

from db.models import Judgment

P_SCALE = 2**32  # a probability crosses as round(p * P_SCALE): exact to 1.2e-10
PARALLEL_MIN_ROWS = 100_000  # below this a second connection costs more than it saves


def probability_sql(column) -> ColumnElement:
    """SQL: `column` (a probability, or NULL) as an integer, round(p * P_SCALE), -1 for NULL."""
    return func.coalesce(cast(func.round(column * P_SCALE), BigInteger), -1)


def probability_values(codes: np.ndarray, null: float) -> np.ndarray:
    """The probabilities back from probability_sql's integers; `null` where it was NULL."""
    return np.where(codes < 0, null, codes / P_SCALE)


def read_int_columns(
    session: Session,
    values: Sequence[ColumnElement],
    from_: FromClause,
    conditions: Sequence[ColumnElement],
) -> list[np.ndarray]:
    """Each integer expression of `values` over the rows of `from_` that meet `conditions`
    (which include the judgments table), as one int64 array per expression, rows in the same
    order across the arrays."""
    parts = _judgment_ranges(session)
    if not parts:
        return _read_part(session.connection(), values, from_, conditions)
    engine = session.get_bind()

    def read(part: ColumnElement) -> list[np.ndarray]:
        with engine.connect() as connection:
            return _read_part(connection, values, from_, [*conditions, part])

    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        results = list(pool.map(read, parts))
    return [np.concatenate(arrays) for arrays in zip(*results, strict=True)]


def _read_part(connection: Connection, values, from_, conditions) -> list[np.ndarray]:
    if connection.dialect.name == "sqlite":
        joined = [func.group_concat(value, ",") for value in values]
    else:
        joined = [func.string_agg(cast(value, Text), ",") for value in values]
    query = select(*joined, func.count()).select_from(from_).where(*conditions)
    *texts, count = connection.execute(query).one()
    arrays = [np.fromstring(text or "", dtype=np.int64, sep=",") for text in texts]
    for array in arrays:
        if len(array) != count:
            raise RuntimeError(f"parsed {len(array)} of {count} stream values")
    return arrays


def _has_written(connection: Connection) -> bool:
    """True when other connections may not see what this one sees: its transaction has
    written (SQLite: pysqlite opened a transaction, which it does at the first write;
    PostgreSQL: the transaction holds an id, which it gets at its first write), or the
    database lives in this connection's memory."""
    if connection.dialect.name == "postgresql":
        return connection.scalar(select(func.pg_current_xact_id_if_assigned())) is not None
    url = connection.engine.url
    if connection.dialect.name != "sqlite" or url.database in (None, "", ":memory:"):
        return True
    return "mode=memory" in str(url) or connection.connection.driver_connection.in_transaction


def usable_cores() -> int:
    """The parallel parts of a read: one per core this process may run on, at most 4."""
    if hasattr(os, "sched_getaffinity"):  # Linux: the cores this process is allowed
        return min(len(os.sched_getaffinity(0)), 4)
    return min(os.cpu_count() or 1, 4)


def _judgment_ranges(session: Session) -> list[ColumnElement]:
    """Conditions cutting the judgments into one id range per core, when other connections
    see what the session sees: a database file or server (not SQLite in memory), and a session
    without uncommitted writes. Else none: the whole table is read on the session's own
    connection."""
    connection = session.connection()
    if _has_written(connection):
        return []
    cores = usable_cores()
    # Two queries: SQLite answers a lone min() or max() from the B-tree's edge, both together
    # by a scan.
    low = connection.scalar(select(func.min(Judgment.id)))
    high = connection.scalar(select(func.max(Judgment.id)))
    if cores < 2 or low is None or high - low < PARALLEL_MIN_ROWS:
        return []
    bounds = np.linspace(low, high + 1, cores + 1).astype(np.int64).tolist()
    return [Judgment.id.between(a, b - 1) for a, b in itertools.pairwise(bounds)]
