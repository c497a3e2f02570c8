"""Numbers for the home page: what is in the database and what to do next."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.enums import JudgmentStatus, QueueTier
from db.models import JudgeVersion, Judgment, Pair, SyncRun, User
from pipeline.review.queue import auto_accept_threshold, queue_size, required_labels


@dataclass(frozen=True)
class JudgeSummary:
    id: int
    name: str
    backend: str
    model_id: str
    confidence_kind: str
    created_at: datetime
    ok: int
    invalid: int
    failed: int


@dataclass(frozen=True)
class Overview:
    pairs: int
    judged: int
    human_labelled: int
    in_queue_for_you: int  # capped at COUNT_CAP + 1
    required_labels: int
    auto_accept: float | None
    judges: list[JudgeSummary]
    last_sync: SyncRun | None
    users: int

    def next_steps(self) -> list[str]:
        steps = []
        if self.pairs == 0:
            steps.append("Import pairs: `rlaif import pairs.jsonl`.")
        elif self.judged < self.pairs:
            steps.append(
                f"{self.pairs - self.judged:,} pairs have no AI judgment: run `rlaif label`."
            )
        if self.in_queue_for_you:
            steps.append("Label the most urgent pairs in the **Review queue**.")
        if self.judges and self.human_labelled == 0:
            steps.append(
                "Draw a **spot-check sample** and label it: an unbiased alignment estimate."
            )
        if self.human_labelled:
            steps.append("See how far the judge agrees with people on the **Alignment** page.")
        return steps


def overview(session: Session, *, username: str) -> Overview:
    pairs = session.scalar(select(func.count()).select_from(Pair))
    judged = session.scalar(
        select(func.count()).select_from(Pair).where(Pair.queue_tier < QueueTier.UNJUDGED)
    )
    labelled = session.scalar(
        select(func.count()).select_from(Pair).where(Pair.human_label_count > 0)
    )
    status_counts: dict[int, dict[str, int]] = {}
    for judge_id, status, n in session.execute(
        select(Judgment.judge_version_id, Judgment.status, func.count()).group_by(
            Judgment.judge_version_id, Judgment.status
        )
    ):
        status_counts.setdefault(judge_id, {})[status] = n
    judges = [
        JudgeSummary(
            id=j.id,
            name=j.name,
            backend=j.backend,
            model_id=j.model_id,
            confidence_kind=j.confidence_kind,
            created_at=j.created_at,
            ok=status_counts.get(j.id, {}).get("ok", 0),
            invalid=status_counts.get(j.id, {}).get(JudgmentStatus.INVALID, 0),
            failed=status_counts.get(j.id, {}).get(JudgmentStatus.FAILED, 0),
        )
        for j in session.scalars(select(JudgeVersion).order_by(JudgeVersion.id))
    ]
    last_sync = session.scalar(select(SyncRun).order_by(SyncRun.id.desc()).limit(1))
    return Overview(
        pairs=pairs,
        judged=judged,
        human_labelled=labelled,
        in_queue_for_you=queue_size(session, username=username),
        required_labels=required_labels(session),
        auto_accept=auto_accept_threshold(session),
        judges=judges,
        last_sync=last_sync,
        users=session.scalar(select(func.count()).select_from(User)),
    )
