"""What the win rates are computed from: SQL aggregates of the outcomes of pairs between
systems, and one stream of per-pair rows for the fits (length control, PPI).

Outcome of a pair for the system in slot A: 1 (A preferred), 0.5 (tie), 0 (B preferred).
A pair whose two responses are the same text (the same response row) is a tie by construction,
for the judge and for people alike, whatever was stored. The AI outcome comes from the stored
label (a swap-inconsistent judgment counts as labelled: the combined probability decided it);
invalid and failed judgments have no outcome and are counted apart. The human outcome comes
from the human reference of pipeline/metrics.py (override, else strict-majority consensus).
Pairs without both systems take part in nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import ColumnElement, Float, Join, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Alias

from db.models import Judgment, Pair, Response
from pipeline.metrics import classify, has_human_reference, human_reference

OUTCOME = {"A": 1.0, "tie": 0.5, "B": 0.0}


@dataclass(frozen=True)
class SystemFilter:
    """Pairs involving `system` (either slot), and also `opponent` when given."""

    system: str | None = None
    opponent: str | None = None
    source: str | None = None  # only pairs with this source tag (e.g. one evaluation's)

    def condition(self) -> ColumnElement[bool]:
        # Spelled as one concatenation (NULL when either is) so that SQLite scans the pairs in
        # id order instead of walking the system index and probing judgments at random.
        conditions = [Pair.system_a.concat(Pair.system_b).is_not(None)]
        for name in (self.system, self.opponent):
            if name is not None:
                conditions.append(or_(Pair.system_a == name, Pair.system_b == name))
        if self.source is not None:
            conditions.append(Pair.source == self.source)
        return and_(*conditions)


class _PairScanJoin(Join):
    """`pairs JOIN judgments` that SQLite executes as a scan of the pairs in id order, then one
    probe of the unique (pair_id, judge_version_id) index each.

    Left alone, SQLite reads the pairs through the (system_a, system_b) index, which covers
    the system columns but visits the judgments in random order: several times slower at 1 M
    pairs. CROSS JOIN pins the join order, NOT INDEXED the scan. Other databases get a plain
    JOIN and plan it from their statistics."""

    inherit_cache = True


@compiles(_PairScanJoin, "sqlite")
def _pair_scan_sqlite(element, compiler, **kw):
    kw["asfrom"] = True
    left, right = (compiler.process(side, **kw) for side in (element.left, element.right))
    kw.pop("asfrom")
    on = compiler.process(element.onclause, **kw)
    return f"{left} NOT INDEXED CROSS JOIN {right} ON {on}"


def pairs_with_judgments() -> Join:
    return _PairScanJoin(Pair.__table__, Judgment.__table__, Judgment.pair_id == Pair.id)


class _LengthLookup(Alias):
    """`responses AS name` that SQLite reads through the covering (id, text_length) index.

    SQLite prefers the rowid to any index for `id = ?`, and a response row holds its whole
    text: at 1 M pairs that is a random read of a large table per response, where the index is
    a few megabytes. Other databases get a plain alias and plan it from their statistics."""

    inherit_cache = True


@compiles(_LengthLookup, "sqlite")
def _length_lookup_sqlite(element, compiler, **kw):
    text = compiler.visit_alias(element, **kw)
    return f"{text} INDEXED BY ix_responses_length" if kw.get("asfrom") else text


def response_lengths():
    """Two aliases of `responses` (slot A, slot B) for reading text_length."""
    table = Response.__table__
    return _LengthLookup._construct(table, name="resp_a"), _LengthLookup._construct(
        table, name="resp_b"
    )


def identical():
    """SQL: 1 when both slots hold the same response (the same text), else 0."""
    return case((Pair.response_a_id == Pair.response_b_id, 1), else_=0)


@dataclass(frozen=True)
class AiCell:
    """Judgments of one judge version on pairs with these slot systems, by outcome."""

    judge_version_id: int
    system_a: str
    system_b: str
    outcome_a: float | None  # None: invalid or failed
    n: int


@dataclass(frozen=True)
class HumanCell:
    system_a: str
    system_b: str
    outcome_a: float
    n: int


def ai_cells(session: Session, judge_ids: Sequence[int], where: SystemFilter) -> list[AiCell]:
    """One GROUP BY over pairs x judgments: the AI counts of every judge and slot pair."""
    if not judge_ids:
        return []
    same = identical()
    keys = [Judgment.judge_version_id, Pair.system_a, Pair.system_b, same, Judgment.status]
    query = (
        select(*keys, Judgment.label, func.count())
        .select_from(pairs_with_judgments())
        .where(where.condition(), Judgment.judge_version_id.in_(judge_ids))
        .group_by(*keys, Judgment.label)
    )
    cells = []
    for judge_id, system_a, system_b, is_same, status, label, n in session.execute(query):
        if is_same:
            outcome = 0.5
        elif classify(status, label) == "valid":
            outcome = OUTCOME[label]
        else:
            outcome = None
        cells.append(AiCell(judge_id, system_a, system_b, outcome, n))
    return cells


def human_cells(session: Session, where: SystemFilter) -> list[HumanCell]:
    """Human outcomes of the pairs between systems (human-referenced or identical pairs)."""
    same = identical()
    reference = human_reference()
    # Grouped by outcome first: a GROUP BY led by the system columns makes SQLite walk the
    # system index and fetch every pair at random.
    keys = [same, reference, Pair.system_a, Pair.system_b]
    query = (
        select(*keys, func.count())
        .where(where.condition(), or_(has_human_reference(), same == 1))
        .group_by(*keys)
    )
    return [
        HumanCell(system_a, system_b, 0.5 if is_same else OUTCOME[ref], n)
        for is_same, ref, system_a, system_b, n in session.execute(query)
    ]


@dataclass(frozen=True)
class PairStream:
    """Per-pair rows of the judged pairs between two different systems, as arrays.

    `system_a`/`system_b`: indexes into `names`; `ai`: the hard AI outcome for slot A (nan when
    invalid or failed); `soft`: the judge's P(A preferred) (the hard outcome when no
    probability was stored, 0.5 when invalid or failed); `length_diff`: characters of A minus
    characters of B; `human`: the human outcome for A (nan without a human reference)."""

    names: tuple[str, ...]  # sorted
    judge_version_id: np.ndarray
    system_a: np.ndarray
    system_b: np.ndarray
    ai: np.ndarray
    soft: np.ndarray
    length_diff: np.ndarray
    human: np.ndarray


def _outcome_sql(label) -> ColumnElement:
    return case(
        (label == "A", literal(1.0)),
        (label == "B", literal(0.0)),
        (label == "tie", literal(0.5)),
        else_=None,
    )


def system_names(session: Session, where: SystemFilter) -> list[str]:
    """Every system named in either slot of the pairs `where` selects, sorted (via the
    system indexes: a few milliseconds at 1 M pairs)."""
    names: set[str] = set()
    for column in (Pair.system_a, Pair.system_b):
        query = select(column).where(column.is_not(None)).distinct()
        names.update(session.scalars(query))
    for name in (where.system, where.opponent):
        if name is not None and name not in names:
            return []
    return sorted(names)


NO_OUTCOME = -1.0  # stands for NULL in the stream: every column arrives as a number


def stream_pairs(session: Session, judge_ids: Sequence[int], where: SystemFilter) -> PairStream:
    """One pass over the judged pairs between different systems (self-comparisons are 0.5 by
    construction and need no fit): the rows the logistic fits and PPI read.

    Every column is numeric (systems as codes, NULL as NO_OUTCOME), so a million rows become
    one float array in one step."""
    names = system_names(session, where) if judge_ids else []
    if not names:
        empty = np.zeros(0)
        return PairStream(
            (), empty.astype(np.int64), *([empty.astype(np.int64)] * 2), *([empty] * 4)
        )
    codes = {name: index for index, name in enumerate(names)}
    resp_a, resp_b = response_lengths()
    same = Pair.response_a_id == Pair.response_b_id
    valid = and_(Judgment.status == "ok", Judgment.label.in_(tuple(OUTCOME)))
    hard = _outcome_sql(Judgment.label)
    ai = case((same, literal(0.5)), (valid, hard), else_=literal(NO_OUTCOME))
    soft = case(
        (same, literal(0.5)),
        (valid, func.coalesce(cast(Judgment.p_a, Float), hard)),
        else_=literal(0.5),
    )
    human = case(
        (same, literal(0.5)),
        else_=func.coalesce(_outcome_sql(human_reference()), literal(NO_OUTCOME)),
    )
    query = (
        select(
            Judgment.judge_version_id,
            case(codes, value=Pair.system_a),
            case(codes, value=Pair.system_b),
            ai,
            soft,
            func.coalesce(resp_a.c.text_length - resp_b.c.text_length, 0),
            human,
        )
        .select_from(
            pairs_with_judgments()
            .join(resp_a, resp_a.c.id == Pair.response_a_id)
            .join(resp_b, resp_b.c.id == Pair.response_b_id)
        )
        .where(
            where.condition(),
            Pair.system_a != Pair.system_b,
            Judgment.judge_version_id.in_(judge_ids),
        )
    )
    rows = np.array(_fetch_raw(session, query), dtype=float).reshape(-1, 7)
    missing = lambda column: np.where(column == NO_OUTCOME, np.nan, column)  # noqa: E731
    return PairStream(
        names=tuple(names),
        judge_version_id=rows[:, 0].astype(np.int64),
        system_a=rows[:, 1].astype(np.int64),
        system_b=rows[:, 2].astype(np.int64),
        ai=missing(rows[:, 3]),
        soft=rows[:, 4],
        length_diff=rows[:, 5],
        human=missing(rows[:, 6]),
    )


def _fetch_raw(session: Session, query) -> list[tuple]:
    """All rows through the DBAPI cursor: at a million rows SQLAlchemy's row objects cost more
    than the query. The statement is compiled by SQLAlchemy for the session's dialect, with its
    values rendered as escaped literals."""
    connection = session.connection()
    sql = query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(sql))
        return cursor.fetchall()
    finally:
        cursor.close()
