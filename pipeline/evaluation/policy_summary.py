"""What an evaluation of a policy says as it stands now: P's win rate over B by the judge
(raw, length-controlled), by people and PPI-corrected as they label the spot-check sample,
and the judge's alignment when it ran. Read by `rlaif evaluate`, the evaluate job and the
Training page."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Evaluation, JudgeVersion, Pair
from pipeline.evaluation.win_rates import Interval, compute_win_rates

# What `rlaif evaluate --json` prints and the evaluate job writes to output/evaluation.json.
JSON_KEYS = (
    "policy", "baseline", "judge", "pairs", "ai_win_rate", "ai_interval", "lc_win_rate",
    "human_pairs", "ppi_win_rate", "ppi_interval", "evaluation_id", "judge_alignment",
    "warnings", "seconds", "cpu_seconds",
)  # fmt: skip


@dataclass(frozen=True)
class EvaluationSummary:
    """An evaluation's figures as they stand now (PPI moves as reviewers label the spot-check
    sample). `judge_alignment` is the judge check stored with the evaluation (JSON);
    `seconds`/`cpu_seconds` (wall and CPU per stage) only come from the run itself."""

    evaluation_id: int
    policy: str
    baseline: str
    judge: str
    pairs: int  # with a valid AI label, identical pairs (ties) included
    identical_pairs: int
    wins: int
    losses: int
    ties: int
    ai_win_rate: float | None
    ai_interval: Interval | None
    lc_win_rate: float | None
    human_pairs: int  # labelled by a person
    human_win_rate: float | None
    ppi_win_rate: float | None
    ppi_interval: Interval | None
    audit_sample_id: int | None
    judge_alignment: dict[str, Any]
    warnings: list[str]
    seconds: dict[str, float] | None = None
    cpu_seconds: dict[str, float] | None = None

    def as_json(self) -> dict[str, Any]:
        """What `rlaif evaluate --json` prints and the evaluate job writes (JSON_KEYS)."""
        plain = self._plain()
        return {k: plain[k] for k in JSON_KEYS}

    def stored_result(self) -> dict[str, Any]:
        """What Evaluation.result keeps: the figures, without the judge check (stored beside
        them) or the run's timings."""
        skip = ("judge_alignment", "seconds", "cpu_seconds")
        return {k: v for k, v in self._plain().items() if k not in skip}

    def _plain(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def evaluation_summary(session: Session, evaluation: Evaluation) -> EvaluationSummary:
    """The figures as they stand now (PPI moves as reviewers label the spot-check sample)."""
    judge = session.get(JudgeVersion, evaluation.judge_version_id)
    rows = compute_win_rates(
        session,
        [judge.name],
        system=evaluation.policy,
        opponent=evaluation.baseline,
        source=evaluation.pair_source,
    )
    row = next((r for r in rows if r.system == evaluation.policy), None)
    identical = session.scalar(
        select(func.count()).where(
            Pair.source == evaluation.pair_source, Pair.response_a_id == Pair.response_b_id
        )
    )
    # People's labels on these pairs (the win-rate code also counts identical pairs as human
    # ties by construction; here "human" means labelled by a person).
    labelled = session.scalar(
        select(func.count()).where(
            Pair.source == evaluation.pair_source,
            (Pair.human_consensus.is_not(None)) | (Pair.override_label.is_not(None)),
        )
    )
    check = evaluation.alignment or {}
    warnings = list(check.get("warnings") or [])
    if row is not None and row.warning:
        warnings.append(row.warning)
    return EvaluationSummary(
        evaluation_id=evaluation.id,
        policy=evaluation.policy,
        baseline=evaluation.baseline,
        judge=judge.name,
        pairs=row.pairs if row else 0,
        identical_pairs=identical,
        wins=row.ai_wins if row else 0,
        losses=row.ai_losses if row else 0,
        ties=row.ai_ties if row else 0,
        ai_win_rate=row.ai_win_rate if row else None,
        ai_interval=row.ai_interval if row else None,
        lc_win_rate=row.lc_win_rate if row else None,
        human_pairs=labelled,
        human_win_rate=row.human_win_rate if row and labelled else None,
        ppi_win_rate=row.ppi_win_rate if row and labelled else None,
        ppi_interval=row.ppi_interval if row and labelled else None,
        audit_sample_id=evaluation.audit_sample_id,
        judge_alignment=check,
        warnings=warnings,
    )
