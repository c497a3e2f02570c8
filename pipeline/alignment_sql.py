"""The GROUP BY queries behind pipeline/alignment.py: each returns a small aggregate.

Confidence is counted in a fine histogram (steps of 1/FINE_BINS); the reliability diagram and the
threshold curve are exact re-groupings of it, because their bin edges are multiples of the step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Integer, and_, case, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from db.models import AuditSampleItem, Judgment, Pair
from pipeline.metrics import human_reference, judgment_class

FINE_BINS = 100
# A confidence of exactly 0.29 is 28.999...96 after * 100: nudge it into its own bin.
_EPS = 1e-9


class _floor_int(FunctionElement):
    """floor(x) as an integer, for x >= 0 (SQLite's CAST truncates; PostgreSQL's rounds)."""

    type = Integer()
    inherit_cache = True
    name = "floor_int"


@compiles(_floor_int)
def _floor_default(element, compiler, **kw):
    return f"CAST(FLOOR({compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(_floor_int, "sqlite")
def _floor_sqlite(element, compiler, **kw):
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


def fine_bin():
    """SQL: the confidence's fine bin, 0..FINE_BINS (1.0 is bin FINE_BINS); NULL if unknown."""
    return _floor_int(Judgment.confidence * FINE_BINS + _EPS)


def _clamp(value: int | None) -> int | None:
    return None if value is None else max(0, min(int(value), FINE_BINS))


def _valid():
    return judgment_class() == "valid"


def _eligible():
    """Would be auto-accepted at a low enough threshold: valid and swap-consistent."""
    return and_(_valid(), func.coalesce(Judgment.swap_inconsistent, False).is_(False))


@dataclass(frozen=True)
class ComparedBin:
    fine_bin: int
    eligible: bool
    n: int
    confidence_sum: float
    agree: int


@dataclass(frozen=True)
class PoolBin:
    fine_bin: int | None
    eligible: bool
    n: int


@dataclass
class BiasCounts:
    both_orders: int = 0
    picks_a_first: int = 0
    picks_a_second: int = 0
    picks_b_second: int = 0
    swap_known: int = 0
    swap_inconsistent: int = 0


@dataclass(frozen=True)
class DailyAgreement:
    judge_version_id: int
    day: date
    n: int
    agree: int


@dataclass(frozen=True)
class SpotChecked:
    reference: str
    ai_label: str | None
    weight: float


def _agrees():
    return case((Judgment.label == human_reference(), 1), else_=0)


def _compared_join(ids: Sequence[int]):
    """Human-referenced pairs with a valid AI label with known confidence, of judges `ids`."""
    return (
        select()
        .select_from(Pair)
        .join(Judgment, Judgment.pair_id == Pair.id)
        .where(human_reference().is_not(None), Judgment.judge_version_id.in_(ids), _valid())
    )


def compared_histogram(session: Session, ids: Sequence[int]) -> dict[int, list[ComparedBin]]:
    result: dict[int, list[ComparedBin]] = {i: [] for i in ids}
    if not ids:
        return result
    bin_, eligible = fine_bin(), _eligible()
    query = (
        _compared_join(ids)
        .add_columns(
            Judgment.judge_version_id,
            bin_,
            eligible,
            func.count(),
            func.sum(Judgment.confidence),
            func.sum(_agrees()),
        )
        .where(Judgment.confidence.is_not(None))
        .group_by(Judgment.judge_version_id, bin_, eligible)
    )
    for judge_id, b, ok, n, conf_sum, agree in session.execute(query):
        result[judge_id].append(ComparedBin(_clamp(b), bool(ok), n, float(conf_sum), int(agree)))
    return result


def pool_histogram(
    session: Session, ids: Sequence[int]
) -> tuple[dict[int, list[PoolBin]], dict[int, BiasCounts], dict[int, dict[str | None, int]]]:
    """One scan of the judges' judgments: the confidence histogram of auto-acceptable labels,
    the position-bias counts, and the AI label counts (for PPI)."""
    hist: dict[int, list[PoolBin]] = {i: [] for i in ids}
    bias = {i: BiasCounts() for i in ids}
    labels: dict[int, dict[str | None, int]] = {i: defaultdict(int) for i in ids}
    if not ids:
        return hist, bias, labels
    both = and_(Judgment.p_a_ab.is_not(None), Judgment.p_a_ba.is_not(None))

    def count_if(*conditions) -> object:
        return func.sum(case((and_(both, *conditions), 1), else_=0))

    bin_, eligible = fine_bin(), _eligible()
    label = case((_valid(), Judgment.label), else_=literal(None))
    query = (
        select(
            Judgment.judge_version_id,
            bin_,
            eligible,
            label,
            func.count(),
            count_if(),
            count_if(Judgment.p_a_ab > 0.5),
            count_if(Judgment.p_a_ba > 0.5),
            count_if(Judgment.p_a_ba < 0.5),
            func.count(Judgment.swap_inconsistent),
            func.sum(case((Judgment.swap_inconsistent.is_(True), 1), else_=0)),
        )
        .where(Judgment.judge_version_id.in_(ids))
        .group_by(Judgment.judge_version_id, bin_, eligible, label)
    )
    for judge_id, b, ok, lab, n, n_both, a_first, a_second, b_second, known, inc in session.execute(
        query
    ):
        hist[judge_id].append(PoolBin(_clamp(b), bool(ok), n))
        counts = bias[judge_id]
        counts.both_orders += int(n_both)
        counts.picks_a_first += int(a_first)
        counts.picks_a_second += int(a_second)
        counts.picks_b_second += int(b_second)
        counts.swap_known += int(known)
        counts.swap_inconsistent += int(inc)
        labels[judge_id][lab] += n
    return hist, bias, labels


def pool_label_counts(session: Session, judge_version_id: int) -> dict[str | None, int]:
    """Valid AI labels of one judge by label; invalid and failed ones under None."""
    return pool_histogram(session, [judge_version_id])[2][judge_version_id]


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])  # SQLite's date() gives 'YYYY-MM-DD'


def daily_agreement(session: Session, ids: Sequence[int]) -> list[DailyAgreement]:
    if not ids:
        return []
    day = func.date(Judgment.updated_at)
    query = (
        _compared_join(ids)
        .add_columns(Judgment.judge_version_id, day, func.count(), func.sum(_agrees()))
        .group_by(Judgment.judge_version_id, day)
    )
    return [
        DailyAgreement(judge_id, _as_date(d), n, int(agree))
        for judge_id, d, n, agree in session.execute(query)
    ]


def common_pair_agreement(session: Session, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(n, agreeing) per judge on the human-referenced pairs that every judge in `ids` judged
    validly. Empty with fewer than two judges (it would equal the plain agreement)."""
    if len(ids) < 2:
        return {}
    common = (
        _compared_join(ids)
        .add_columns(Judgment.pair_id)
        .group_by(Judgment.pair_id)
        .having(func.count() == len(ids))
        .subquery()
    )
    query = (
        _compared_join(ids)
        .add_columns(Judgment.judge_version_id, func.count(), func.sum(_agrees()))
        .where(Judgment.pair_id.in_(select(common.c.pair_id)))
        .group_by(Judgment.judge_version_id)
    )
    return {judge_id: (n, int(agree)) for judge_id, n, agree in session.execute(query)}


def spot_checked(
    session: Session, judge_version_id: int, sample_id: int | None
) -> list[SpotChecked]:
    """Human reference and this judge's label on the spot-checked pairs the judge judged.

    With `sample_id`, the pairs of that stored audit sample that have a human reference yet
    (with their inverse-inclusion weights); without, every human-referenced pair (weight 1)."""
    reference = human_reference()
    query = (
        select(reference, case((_valid(), Judgment.label), else_=literal(None)))
        .select_from(Pair)
        .join(Judgment, Judgment.pair_id == Pair.id)
        .where(reference.is_not(None), Judgment.judge_version_id == judge_version_id)
    )
    if sample_id is None:
        return [SpotChecked(ref, ai, 1.0) for ref, ai in session.execute(query)]
    query = query.join(AuditSampleItem, AuditSampleItem.pair_id == Pair.id).where(
        AuditSampleItem.sample_id == sample_id
    )
    query = query.add_columns(AuditSampleItem.weight)
    return [SpotChecked(ref, ai, float(w)) for ref, ai, w in session.execute(query)]
