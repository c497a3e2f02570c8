"""A policy evaluation as a job (the Training page's button): a TrainingJob of kind "evaluate"
run by pipeline/train/jobs.py like a training run.

    python -m pipeline.evaluation.evaluate_job --config config.yaml
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from db.enums import EvaluationStatus, JobStatus
from pipeline.errors import UserError

if TYPE_CHECKING:
    from pipeline.evaluation.policy_summary import EvaluationSummary


@dataclass
class EvaluateRunConfig:
    policy: str = ""  # job:<id> or a model name (pipeline/models.py)
    baseline: str = ""
    judge: str = "default"
    n: int = 32
    prompts: str | None = None
    prompts_file: str | None = None
    max_new_tokens: int = 128
    sample: bool = False
    temperature: float = 0.7
    seed: int = 0
    device: str = "auto"
    policy_job_id: int | None = None
    output_dir: str | None = None
    job_id: int | None = None

    def __post_init__(self) -> None:
        if not self.policy or not self.baseline:
            raise ValueError("an evaluation needs a policy and a baseline")
        if self.n < 1 or self.max_new_tokens < 1:
            raise ValueError("n and max_new_tokens must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run(config: EvaluateRunConfig) -> dict[str, Any]:
    from db.models import TrainingJob
    from db.session import session_scope
    from pipeline.evaluation.policy_eval import (
        Decoding,
        EvaluateRequest,
        run_evaluation,
    )
    from pipeline.train.common import write_json

    created_by = "job"
    if config.job_id is not None:
        with session_scope() as session:
            job = session.get(TrainingJob, config.job_id)
            created_by = job.created_by if job else created_by
    request = EvaluateRequest(
        policy=config.policy,
        baseline=config.baseline,
        judge=config.judge,
        prompts=config.prompts,
        prompts_file=config.prompts_file,
        n=config.n,
        seed=config.seed,
        decoding=Decoding(
            max_new_tokens=config.max_new_tokens,
            sample=config.sample,
            temperature=config.temperature,
            seed=config.seed,
        ),
        device=config.device,
    )
    summary = run_evaluation(request, created_by=created_by, policy_job_id=config.policy_job_id)
    figures = {"ai_win_rate": summary.ai_win_rate, "lc_win_rate": summary.lc_win_rate}
    metrics = {k: v for k, v in (figures | {"pairs": summary.pairs}).items() if v is not None}
    result = {"metrics": metrics, "artifacts": {"evaluation_id": summary.evaluation_id}}
    if config.output_dir:
        output = Path(config.output_dir)
        output.mkdir(parents=True, exist_ok=True)
        # The same object as `rlaif evaluate --json`; result.json last: the supervisor reads
        # the job as succeeded only once it exists.
        write_json(output / "evaluation.json", summary.as_json())
        result["artifacts"]["summary"] = str(output / "evaluation.json")
        write_json(output / "result.json", result)
    print(f"evaluation {summary.evaluation_id}: AI win rate {summary.ai_win_rate}")
    for warning in summary.warnings:
        print(f"warning: {warning}")
    return result


def _cancelled(signum, frame) -> None:
    """`cancel_job` sends SIGTERM to the job's process group: unwind through run_evaluation,
    which marks the evaluation cancelled, rather than die with it left "running"."""
    raise KeyboardInterrupt("cancelled (SIGTERM)")


def main(argv: list[str]) -> None:
    import signal

    import yaml

    signal.signal(signal.SIGTERM, _cancelled)

    if len(argv) != 2 or argv[0] != "--config":
        raise UserError("usage: python -m pipeline.evaluation.evaluate_job --config FILE")
    data = yaml.safe_load(Path(argv[1]).read_text()) or {}
    try:
        config = EvaluateRunConfig(**data)
    except (TypeError, ValueError) as error:
        raise UserError(f"{argv[1]}: {error}") from None
    run(config)


def start_for_run(
    ppo_job_id: int, *, user, baseline: str | None = None, n: int = 32, judge: str = "default"
) -> int:
    """Start an evaluation job of a finished PPO run (admin only, checked by start_job);
    the baseline defaults to the policy the run started from."""
    import json

    from db.models import TrainingJob
    from db.session import session_scope
    from pipeline.train import jobs

    with session_scope() as session:
        run_job = session.get(TrainingJob, ppo_job_id)
        if run_job is None or run_job.kind != "ppo" or run_job.status != JobStatus.SUCCEEDED:
            raise UserError(f"job {ppo_job_id} is not a finished PPO run")
        policy = (run_job.artifacts or {}).get("policy")
    if not baseline:
        lineage = Path(policy or "") / "lineage.json"
        baseline = json.loads(lineage.read_text()).get("base_policy") if lineage.is_file() else None
    if not baseline:
        raise UserError(f"job {ppo_job_id}: no base policy in its lineage; name a baseline")
    config = {
        "policy": f"job:{ppo_job_id}",
        "baseline": baseline,
        "judge": judge,
        "n": n,
        "policy_job_id": ppo_job_id,
    }
    return jobs.start_job("evaluate", config, user=user)


def evaluations_for_run(session, ppo_job_id: int) -> list[EvaluationSummary]:
    """The run's evaluations, newest first, with their figures as they stand now."""
    from sqlalchemy import select

    from db.models import Evaluation
    from pipeline.evaluation.policy_summary import evaluation_summary

    rows = session.scalars(
        select(Evaluation)
        .where(
            Evaluation.policy_job_id == ppo_job_id, Evaluation.status == EvaluationStatus.SUCCEEDED
        )
        .order_by(Evaluation.id.desc())
    )
    return [evaluation_summary(session, e) for e in rows]


if __name__ == "__main__":
    from pipeline.train.common import run_script

    run_script(main)
