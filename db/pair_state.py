"""Recompute the denormalised queue columns of `pairs` from judgments and human labels.

Every writer of judgments, human labels or overrides calls `refresh_pair_state` for the pairs it
touched, in the same transaction. It is set-based SQL, so it costs one statement per 500 pairs.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, case, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from db.models import (
    LABELS,
    TIER_CONTRADICTS_HUMAN,
    TIER_JUDGE_DISAGREEMENT,
    TIER_LOW_CONFIDENCE,
    TIER_SWAP_INCONSISTENT,
    TIER_UNJUDGED,
    HumanLabel,
    Judgment,
    Pair,
)
from db.upsert import chunked


def consensus_subquery(pair_id_column):
    """Strict-majority human label of a pair, or NULL (an even split has no consensus)."""
    inner = aliased(HumanLabel)
    # Correlated to the enclosing human_labels row: SQLAlchemy correlates one level up only.
    total = (
        select(func.count())
        .where(inner.pair_id == HumanLabel.pair_id)
        .correlate(HumanLabel)
        .scalar_subquery()
    )
    return (
        select(HumanLabel.label)
        .where(HumanLabel.pair_id == pair_id_column)
        .group_by(HumanLabel.pair_id, HumanLabel.label)
        .having(2 * func.count() > total)
        .limit(1)
        .scalar_subquery()
    )


def _flag_values() -> dict:
    valid_ai = and_(
        Judgment.pair_id == Pair.id, Judgment.status == "ok", Judgment.label.in_(LABELS)
    )
    # An invalid AI label counts as confidence 0: a human should look at it first.
    effective_confidence = case((Judgment.status == "invalid", 0.0), else_=Judgment.confidence)
    return {
        Pair.human_label_count: select(func.count())
        .where(HumanLabel.pair_id == Pair.id)
        .scalar_subquery(),
        Pair.human_consensus: consensus_subquery(Pair.id),
        Pair.swap_inconsistent: exists().where(
            Judgment.pair_id == Pair.id, Judgment.swap_inconsistent.is_(True)
        ),
        Pair.judge_disagreement: select(func.count(func.distinct(Judgment.label)) > 1)
        .where(valid_ai)
        .scalar_subquery(),
        Pair.contradicts_human: exists()
        .where(valid_ai)
        .where(HumanLabel.pair_id == Pair.id, HumanLabel.label != Judgment.label),
        Pair.min_confidence: select(func.min(effective_confidence))
        .where(Judgment.pair_id == Pair.id, Judgment.status.in_(("ok", "invalid")))
        .scalar_subquery(),
    }


def _tier_value():
    return case(
        (Pair.swap_inconsistent.is_(True), TIER_SWAP_INCONSISTENT),
        (Pair.judge_disagreement.is_(True), TIER_JUDGE_DISAGREEMENT),
        (Pair.contradicts_human.is_(True), TIER_CONTRADICTS_HUMAN),
        (Pair.min_confidence.is_not(None), TIER_LOW_CONFIDENCE),
        else_=TIER_UNJUDGED,
    )


def refresh_pair_state(session: Session, pair_ids: Iterable[int] | None = None) -> None:
    """Recompute queue columns for `pair_ids` (all pairs when None). Never commits."""
    session.flush()
    batches = [None] if pair_ids is None else list(chunked(sorted(set(pair_ids)), 500))
    for batch in batches:
        where = [] if batch is None else [Pair.id.in_(batch)]
        session.execute(
            update(Pair)
            .where(*where)
            .values(_flag_values())
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Pair)
            .where(*where)
            .values({Pair.queue_tier: _tier_value()})
            .execution_options(synchronize_session=False)
        )
