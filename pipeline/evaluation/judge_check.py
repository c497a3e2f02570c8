"""Judge re-validation before its verdict counts: the judge version's alignment with people now
(agreement, Cohen's kappa, its length bias beside people's), and plain warnings when it has no
human-labelled pairs, when its agreement fell by more than DRIFT_POINTS against the figures
stored with earlier evaluations, or when it prefers longer answers more than people do."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Evaluation
from pipeline.evaluation.agreement import compute_metrics

DRIFT_POINTS = 0.05
LENGTH_BIAS_POINTS = 0.10


@dataclass(frozen=True)
class JudgeCheck:
    judge: str
    human_pairs: int  # pairs with a human reference this judge version judged
    agreement: float | None
    kappa: float | None
    ai_prefers_longer: float | None
    human_prefers_longer: float | None
    earlier_agreement: float | None  # the best figure stored with an earlier evaluation
    earlier_evaluation_id: int | None
    warnings: tuple[str, ...]

    def as_dict(self) -> dict:
        return {**asdict(self), "warnings": list(self.warnings)}


def drift_warning(agreement: float | None, earlier: float, where: str) -> str | None:
    """The drift warning when agreement fell more than DRIFT_POINTS below an earlier figure
    (`where` names it: "evaluation 3"); shared by evaluations and harmless rates."""
    if agreement is None or earlier - agreement <= DRIFT_POINTS:
        return None
    return (
        f"judge drift: agreement with people is {agreement:.1%}, "
        f"{(earlier - agreement) * 100:.1f} points below its {earlier:.1%} at {where}"
    )


def _earlier(session: Session, judge_version_id: int, before_id: int | None):
    query = select(Evaluation.id, Evaluation.alignment).where(
        Evaluation.judge_version_id == judge_version_id
    )
    if before_id is not None:
        query = query.where(Evaluation.id < before_id)
    best = None
    for evaluation_id, alignment in session.execute(query):
        value = (alignment or {}).get("agreement")
        if isinstance(value, float | int) and (best is None or value > best[1]):
            best = (evaluation_id, float(value))
    return best


def check_judge(
    session: Session, judge_name: str, judge_version_id: int, before_id: int | None = None
) -> JudgeCheck:
    (m,) = compute_metrics(session, [judge_name])
    warnings = []
    if not m["pairs_compared"]:
        warnings.append(
            f"judge {judge_name} has no human-labelled pairs: its verdict is not validated "
            "against people; label the evaluation's spot-check sample"
        )
    earlier = _earlier(session, judge_version_id, before_id)
    agreement = m["agreement"]
    if earlier and (drift := drift_warning(agreement, earlier[1], f"evaluation {earlier[0]}")):
        warnings.append(drift)
    ai_long, human_long = m.get("ai_prefers_longer"), m.get("human_prefers_longer")
    if ai_long is not None and human_long is not None and ai_long - human_long > LENGTH_BIAS_POINTS:
        warnings.append(
            f"the judge picks the longer answer {ai_long:.0%} of the time, people "
            f"{human_long:.0%}: a longer policy can win on length alone"
        )
    return JudgeCheck(
        judge=judge_name,
        human_pairs=m["pairs_compared"],
        agreement=agreement,
        kappa=m["cohen_kappa"],
        ai_prefers_longer=ai_long,
        human_prefers_longer=human_long,
        earlier_agreement=earlier[1] if earlier else None,
        earlier_evaluation_id=earlier[0] if earlier else None,
        warnings=tuple(warnings),
    )
