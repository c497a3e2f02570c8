"""The GROUP BY queries behind alignment.py, beyond those of agreement.py.

Each returns a small aggregate. Confidence is counted in a fine histogram (steps of
1/FINE_BINS); the reliability diagram and the threshold curve are exact re-groupings of it,
because their bin edges are multiples of the step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import case, func, literal, select, union_all
from sqlalchemy.orm import Session

from db.enums import JudgmentStatus
from db.models import LABELS, AuditSampleItem, Judgment, Pair
from pipeline.evaluation.agreement import (
    has_human_reference,
    human_reference,
    referenced_judgments,
)


@dataclass(frozen=True)
class PoolGroup:
    status: str | None
    label: str | None
    swap_inconsistent: bool | None
    n: int


@dataclass
class PoolScan:
    """One judge's judgments, aggregated: counts by status/label/swap flag, the position-bias
    counts, and (from accepted_by_band) the auto-acceptable labels per confidence band."""

    groups: list[PoolGroup] = field(default_factory=list)
    both_orders: int = 0
    picks_a_first: int = 0
    picks_a_second: int = 0
    picks_b_second: int = 0
    swap_known: int = 0
    swap_inconsistent: int = 0
    band_edges: list[float] = field(default_factory=list)
    accepted_in_band: list[int] = field(default_factory=list)


def pool_scan(session: Session, ids: Sequence[int]) -> dict[int, PoolScan]:
    """One index-only scan (ix_judgments_alignment) of the judges' judgments. The GROUP BY keys
    are the index's leading columns, so the database aggregates as it scans, without sorting
    a million rows."""
    result = {i: PoolScan() for i in ids}
    if not ids:
        return result
    ab, ba = Judgment.p_a_ab, Judgment.p_a_ba
    # Counts of judgments scored in both orders (and with a condition on one of the scores),
    # spelled with as few column reads as SQL allows: count() skips NULLs, so count(ab + ba)
    # counts the rows with both, and count(CASE WHEN ab > 0.5 THEN ba END) those with ab > 0.5
    # and ba known. A quarter less CPU than testing both columns in every CASE.
    keys = [Judgment.judge_version_id, Judgment.status, Judgment.label, Judgment.swap_inconsistent]
    query = (
        select(
            *keys,
            func.count(),
            func.count(ab + ba),
            func.count(case((ab > 0.5, ba))),
            func.count(case((ba > 0.5, ab))),
            func.count(case((ba < 0.5, ab))),
        )
        .where(Judgment.judge_version_id.in_(ids))
        .group_by(*keys)
    )
    for judge_id, status, label, swap, n, n_both, a_first, a_second, b_second in session.execute(
        query
    ):
        scan = result[judge_id]
        scan.groups.append(PoolGroup(status, label, swap, n))
        scan.both_orders += n_both
        scan.picks_a_first += a_first
        scan.picks_a_second += a_second
        scan.picks_b_second += b_second
        if swap is not None:
            scan.swap_known += n
            scan.swap_inconsistent += n if swap else 0
    return result


def accepted_by_band(
    session: Session, scans: dict[int, PoolScan], thresholds: Sequence[float]
) -> None:
    """Fill each scan's `accepted_in_band`: auto-acceptable judgments (valid, swap-consistent)
    with confidence in [thresholds[k], thresholds[k+1]), the last band open at the top.

    One UNION ALL of index range counts, one per (judge, label, swap flag, band): each reads
    only its own slice of ix_judgments_alignment, so the whole costs one pass over the index
    and no sort, where a GROUP BY on a confidence bin would sort every row."""
    edges = list(thresholds)
    branches, slots = [], []
    for judge_id, scan in scans.items():
        scan.band_edges = edges
        scan.accepted_in_band = [0] * len(edges)
        for group in scan.groups:
            if (
                group.status != JudgmentStatus.OK
                or group.label not in LABELS
                or group.swap_inconsistent
            ):
                continue
            swap = (
                Judgment.swap_inconsistent.is_(None)
                if group.swap_inconsistent is None
                else Judgment.swap_inconsistent == False  # noqa: E712 (an index-usable equality)
            )
            for k, lower in enumerate(edges):
                upper = Judgment.confidence < edges[k + 1] if k + 1 < len(edges) else literal(True)
                branches.append(
                    select(literal(len(slots)), func.count()).where(
                        Judgment.judge_version_id == judge_id,
                        Judgment.status == JudgmentStatus.OK,
                        Judgment.label == group.label,
                        swap,
                        Judgment.confidence >= lower,
                        upper,
                    )
                )
                slots.append((judge_id, k))
    # Chunks keep every statement far below the databases' bind-parameter limits.
    for start in range(0, len(branches), 200):
        chunk = branches[start : start + 200]
        query = chunk[0] if len(chunk) == 1 else union_all(*chunk)
        for slot, n in session.execute(query):
            judge_id, k = slots[slot]
            scans[judge_id].accepted_in_band[k] += n


@dataclass(frozen=True)
class DailyAgreement:
    judge_version_id: int
    day: date
    n: int
    agree: int


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])  # SQLite's date() gives 'YYYY-MM-DD'


def _valid_label():
    return (Judgment.status == JudgmentStatus.OK) & Judgment.label.in_(LABELS)


def daily_agreement(session: Session, ids: Sequence[int]) -> list[DailyAgreement]:
    """Compared pairs and agreeing ones per judge per day the AI label was written."""
    if not ids:
        return []
    day = func.date(Judgment.updated_at)
    agree = func.count(case((Judgment.label == human_reference(), 1)))
    query = (
        select(Judgment.judge_version_id, day, func.count(), agree)
        .select_from(referenced_judgments())
        .where(has_human_reference(), Judgment.judge_version_id.in_(ids), _valid_label())
        .group_by(Judgment.judge_version_id, day)
    )
    return [
        DailyAgreement(judge_id, _as_date(d), n, agreed)
        for judge_id, d, n, agreed in session.execute(query)
    ]


def common_pair_agreement(session: Session, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(n, agreeing) per judge on the human-referenced pairs that every judge in `ids` judged
    validly. Empty with fewer than two judges (it would equal the plain agreement).

    One pass: grouped by the driving pairs' id, so the database aggregates as it joins."""
    if len(ids) < 2:
        return {}
    agrees = [
        func.count(
            case(
                ((Judgment.judge_version_id == judge_id) & (Judgment.label == human_reference()), 1)
            )
        ).label(f"agree_{k}")
        for k, judge_id in enumerate(ids)
    ]
    per_pair = (
        select(Pair.id, *agrees)
        .select_from(referenced_judgments())
        .where(has_human_reference(), Judgment.judge_version_id.in_(ids), _valid_label())
        .group_by(Pair.id)
        .having(func.count() == len(ids))  # one judgment per (pair, judge): unique constraint
        .subquery()
    )
    totals = session.execute(
        select(func.count(), *(func.sum(per_pair.c[f"agree_{k}"]) for k in range(len(ids))))
    ).one()
    return {judge_id: (totals[0], int(totals[k + 1] or 0)) for k, judge_id in enumerate(ids)}


@dataclass(frozen=True)
class SpotCheckCell:
    """Spot-checked pairs with the same (human says A, AI says A, weight)."""

    human_a: bool
    ai_a: bool
    weight: float
    n: int


def sample_cells(session: Session, judge_version_id: int, sample_id: int) -> list[SpotCheckCell]:
    """The pairs of stored audit sample `sample_id` that have a human reference and a judgment
    of this judge, counted by (human A?, AI A?, inverse-inclusion weight)."""
    human_a = case((human_reference() == "A", 1), else_=0)
    ai_a = case((_valid_label() & (Judgment.label == "A"), 1), else_=0)
    query = (
        select(human_a, ai_a, AuditSampleItem.weight, func.count())
        .select_from(AuditSampleItem)
        .join(Pair, Pair.id == AuditSampleItem.pair_id)
        .join(Judgment, Judgment.pair_id == Pair.id)
        .where(
            AuditSampleItem.sample_id == sample_id,
            Judgment.judge_version_id == judge_version_id,
            has_human_reference(),
        )
        .group_by(human_a, ai_a, AuditSampleItem.weight)
    )
    return [SpotCheckCell(bool(h), bool(a), float(w), n) for h, a, w, n in session.execute(query)]
