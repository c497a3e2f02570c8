"""The denormalised pair state recomputed in plain Python from the label tables, independently
of db/pair_state.py's SQL, so a test can compare what is stored with what it should be."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import LABELS, HumanLabel, Judgment, Pair


@dataclass(frozen=True)
class PairState:
    human_label_count: int
    human_consensus: str | None
    swap_inconsistent: bool
    judge_disagreement: bool
    contradicts_human: bool
    min_confidence: float | None
    queue_tier: int


def _state(humans: list[str], judgments: list[tuple]) -> PairState:
    counts = Counter(humans)
    consensus = next((lab for lab, n in counts.items() if 2 * n > len(humans)), None)
    valid_ai = [label for label, status, *_ in judgments if status == "ok" and label in LABELS]
    confidences = [
        0.0 if status == "invalid" else confidence
        for _, status, confidence, _ in judgments
        if status in ("ok", "invalid") and (status == "invalid" or confidence is not None)
    ]
    swap = any(swap is True for *_, swap in judgments)
    disagree = len(set(valid_ai)) > 1
    contradicts = any(h != a for h in humans for a in valid_ai)
    min_conf = min(confidences) if confidences else None
    tier = 0 if swap else 1 if disagree else 2 if contradicts else 3 if min_conf is not None else 4
    return PairState(len(humans), consensus, swap, disagree, contradicts, min_conf, tier)


def recount(session: Session) -> dict[int, PairState]:
    """pair id -> the state the label tables imply."""
    humans: dict[int, list[str]] = defaultdict(list)
    for pair_id, label in session.execute(select(HumanLabel.pair_id, HumanLabel.label)):
        humans[pair_id].append(label)
    judged: dict[int, list[tuple]] = defaultdict(list)
    query = select(
        Judgment.pair_id,
        Judgment.label,
        Judgment.status,
        Judgment.confidence,
        Judgment.swap_inconsistent,
    )
    for pair_id, *row in session.execute(query):
        judged[pair_id].append(tuple(row))
    return {
        pair_id: _state(humans[pair_id], judged[pair_id])
        for pair_id in session.scalars(select(Pair.id))
    }


def stored(session: Session) -> dict[int, PairState]:
    rows = session.execute(
        select(
            Pair.id,
            Pair.human_label_count,
            Pair.human_consensus,
            Pair.swap_inconsistent,
            Pair.judge_disagreement,
            Pair.contradicts_human,
            Pair.min_confidence,
            Pair.queue_tier,
        )
    )
    return {pair_id: PairState(*values) for pair_id, *values in rows}


def wrong_pairs(session: Session) -> dict[int, tuple[PairState, PairState]]:
    """pair id -> (stored, recounted) for every pair whose stored state is wrong."""
    expected, actual = recount(session), stored(session)
    return {pid: (actual[pid], want) for pid, want in expected.items() if actual[pid] != want}
