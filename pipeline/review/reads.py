"""Reads of pairs that the queue, browse and the review pages share."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import JudgmentStatus, QueueTier
from db.models import JudgeVersion, Judgment, Pair
from pipeline.review.types import JudgmentView, PairView


def load_pairs(session: Session, pair_ids: Sequence[int]) -> list[PairView]:
    """Pairs with their text and every judgment, in the order of `pair_ids`."""
    if not pair_ids:
        return []
    pairs = {p.id: p for p in session.scalars(select(Pair).where(Pair.id.in_(pair_ids)))}
    judgments: dict[int, list[JudgmentView]] = {}
    rows = session.execute(
        select(Judgment, JudgeVersion.name)
        .join(JudgeVersion, JudgeVersion.id == Judgment.judge_version_id)
        .where(Judgment.pair_id.in_(pair_ids))
        .order_by(Judgment.judge_version_id)
    )
    for judgment, name in rows:
        judgments.setdefault(judgment.pair_id, []).append(
            JudgmentView(
                judge_version_id=judgment.judge_version_id,
                judge_name=name,
                label=judgment.label,
                p_a=judgment.p_a,
                confidence=judgment.confidence,
                p_a_ab=judgment.p_a_ab,
                p_a_ba=judgment.p_a_ba,
                swap_inconsistent=judgment.swap_inconsistent,
                rationale=judgment.rationale,
                status=JudgmentStatus(judgment.status),
                error=judgment.error,
            )
        )
    views = []
    for pair_id in pair_ids:
        pair = pairs.get(pair_id)
        if pair is None:
            continue
        views.append(
            PairView(
                pair_id=pair.id,
                external_id=pair.external_id,
                source=pair.source,
                meta=dict(pair.meta or {}),
                prompt=pair.prompt.text,
                response_a=pair.response_a.text,
                response_b=pair.response_b.text,
                queue_tier=QueueTier(pair.queue_tier),
                min_confidence=pair.min_confidence,
                human_label_count=pair.human_label_count,
                human_consensus=pair.human_consensus,
                override_label=pair.override_label,
                version=pair.version,
                judgments=judgments.get(pair.id, []),
            )
        )
    return views


def filter_choices(session: Session) -> dict[str, list]:
    """Judge versions and sources for the filter widgets (sources via the source index)."""
    judges = list(
        session.execute(select(JudgeVersion.id, JudgeVersion.name).order_by(JudgeVersion.id))
    )
    sources = list(session.scalars(select(Pair.source).distinct().order_by(Pair.source).limit(500)))
    return {"judges": [(j.id, j.name) for j in judges], "sources": sources}
