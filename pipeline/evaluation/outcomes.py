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
from sqlalchemy import ColumnElement, Float, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from db.models import Judgment, Pair, Response
from pipeline.metrics import classify, has_human_reference, human_reference

OUTCOME = {"A": 1.0, "tie": 0.5, "B": 0.0}


@dataclass(frozen=True)
class SystemFilter:
    """Pairs involving `system` (either slot), and also `opponent` when given."""

    system: str | None = None
    opponent: str | None = None

    def condition(self) -> ColumnElement[bool]:
        conditions = [Pair.system_a.is_not(None), Pair.system_b.is_not(None)]
        for name in (self.system, self.opponent):
            if name is not None:
                conditions.append(or_(Pair.system_a == name, Pair.system_b == name))
        return and_(*conditions)


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
        .select_from(Pair)
        .join(Judgment, Judgment.pair_id == Pair.id)
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
    keys = [Pair.system_a, Pair.system_b, same, reference]
    query = (
        select(*keys, func.count())
        .where(where.condition(), or_(has_human_reference(), same == 1))
        .group_by(*keys)
    )
    return [
        HumanCell(system_a, system_b, 0.5 if is_same else OUTCOME[ref], n)
        for system_a, system_b, is_same, ref, n in session.execute(query)
    ]


@dataclass(frozen=True)
class PairStream:
    """Per-pair rows of the judged pairs between two different systems, as arrays.

    `ai`: the hard AI outcome for slot A (nan when invalid or failed); `soft`: the judge's
    P(A preferred) (the hard outcome when no probability was stored, 0.5 when invalid or
    failed); `length_diff`: characters of A minus characters of B; `human`: the human outcome
    for A (nan without a human reference)."""

    judge_version_id: np.ndarray
    system_a: np.ndarray  # object arrays of names
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


def stream_pairs(session: Session, judge_ids: Sequence[int], where: SystemFilter) -> PairStream:
    """One pass over the judged pairs between different systems (self-comparisons are 0.5 by
    construction and need no fit): the rows the logistic fits and PPI read."""
    resp_a, resp_b = aliased(Response), aliased(Response)
    same = Pair.response_a_id == Pair.response_b_id
    valid = and_(Judgment.status == "ok", Judgment.label.in_(tuple(OUTCOME)))
    hard = _outcome_sql(Judgment.label)
    ai = case((same, literal(0.5)), (valid, hard), else_=None)
    soft = case(
        (same, literal(0.5)),
        (valid, func.coalesce(cast(Judgment.p_a, Float), hard)),
        else_=literal(0.5),
    )
    human = case((same, literal(0.5)), else_=_outcome_sql(human_reference()))
    query = (
        select(
            Judgment.judge_version_id,
            Pair.system_a,
            Pair.system_b,
            ai,
            soft,
            resp_a.text_length - resp_b.text_length,
            human,
        )
        .select_from(Pair)
        .join(Judgment, Judgment.pair_id == Pair.id)
        .join(resp_a, resp_a.id == Pair.response_a_id)
        .join(resp_b, resp_b.id == Pair.response_b_id)
        .where(
            where.condition(),
            Pair.system_a != Pair.system_b,
            Judgment.judge_version_id.in_(judge_ids),
        )
    )
    rows = session.execute(query).all() if judge_ids else []
    columns = list(zip(*rows, strict=True)) if rows else [()] * 7
    as_float = [np.array(c, dtype=float) for c in columns[3:]]  # None -> nan
    return PairStream(
        judge_version_id=np.array(columns[0], dtype=np.int64),
        system_a=np.array(columns[1], dtype=object),
        system_b=np.array(columns[2], dtype=object),
        ai=as_float[0],
        soft=as_float[1],
        length_diff=np.nan_to_num(as_float[2]),
        human=as_float[3],
    )
