"""What the review modules (queue, browse, overview, spot-check) and their pages share: the
settings keys and limits, the filters, and the views of a pair and its judgments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from db.enums import JudgmentStatus, QueueTier

# Keys of the queue's settings (db/app_settings.py).
REQUIRED_LABELS_KEY = "human_labels_required_per_pair"
AUTO_ACCEPT_KEY = "auto_accept_confidence"
SKIP_KIND = "skip"  # a LabelAudit row: the reviewer passed on this pair (their note as reason)
MAX_REQUIRED_LABELS = 10
COUNT_CAP = 10_000  # counts above this show as "10,000+": an exact count at 1 M rows costs a scan

TIER_REASONS = {
    QueueTier.SWAP_INCONSISTENT: "swap-inconsistent: the judge changed its answer with the order",
    QueueTier.JUDGE_DISAGREEMENT: "judge versions disagree",
    QueueTier.CONTRADICTS_HUMAN: "the AI label contradicts another reviewer",
    QueueTier.LOW_CONFIDENCE: "low judge confidence",
    QueueTier.UNJUDGED: "no AI judgment yet",
}


@dataclass(frozen=True)
class QueueFilters:
    judge_version_id: int | None = None
    source: str | None = None
    meta_key: str | None = None
    meta_value: str | None = None
    # With a judge version: that judge's confidence; otherwise the pair's lowest confidence.
    min_confidence: float | None = None
    max_confidence: float | None = None
    audit_sample_id: int | None = None  # only pairs of this spot-check sample


@dataclass(frozen=True)
class JudgmentView:
    judge_version_id: int
    judge_name: str
    label: str | None
    p_a: float | None
    confidence: float | None
    p_a_ab: float | None
    p_a_ba: float | None
    swap_inconsistent: bool | None
    rationale: str | None
    status: JudgmentStatus
    error: str | None


@dataclass(frozen=True)
class PairView:
    """What a reviewer sees of one pair."""

    pair_id: int
    external_id: str
    source: str
    meta: dict[str, Any]
    prompt: str
    response_a: str
    response_b: str
    queue_tier: QueueTier
    min_confidence: float | None
    human_label_count: int
    human_consensus: str | None
    override_label: str | None
    version: int
    judgments: list[JudgmentView] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return TIER_REASONS.get(self.queue_tier, "")
