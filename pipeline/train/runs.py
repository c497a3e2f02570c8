"""What the Training page and `rlaif jobs` read about runs (and the page's snapshot button):
the run list, metrics, lineage, samples. Process supervision lives in jobs.py.

This module imports no torch/transformers: the CLI and the app import it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import JobStatus
from db.models import Evaluation, JobMetric, JudgeVersion, Snapshot, TrainingJob
from db.session import session_scope
from pipeline.auth import users as auth
from pipeline.train.jobs import reconcile


def list_jobs(session: Session, limit: int = 50) -> list[TrainingJob]:
    reconcile(session)
    return list(session.scalars(select(TrainingJob).order_by(TrainingJob.id.desc()).limit(limit)))


def job_states(session: Session, limit: int = 50) -> tuple[tuple[int, str], ...]:
    """(id, status) of the newest runs: the training page reruns in full when this changes."""
    rows = session.execute(
        select(TrainingJob.id, TrainingJob.status).order_by(TrainingJob.id.desc()).limit(limit)
    )
    return tuple((job_id, status) for job_id, status in rows)


def metric_rows(session: Session, job_id: int) -> list[tuple[int, str, float]]:
    return [
        (row.step, row.name, row.value)
        for row in session.execute(
            select(JobMetric.step, JobMetric.name, JobMetric.value)
            .where(JobMetric.job_id == job_id)
            .order_by(JobMetric.step, JobMetric.id)
        )
    ]


def lineage(session: Session, job: TrainingJob) -> list[str]:
    """policy run -> reward model -> snapshot -> labels, as lines of text."""
    chain, seen = [], set()
    current: TrainingJob | None = job
    while current is not None and current.id not in seen:
        seen.add(current.id)
        what = current.artifacts.get("model") or current.output_dir or "(no output yet)"
        chain.append(f"{current.kind} job {current.id} ({current.status}): {what}")
        if current is job:
            chain.extend(evaluation_lines(session, job.id))
        if current.kind == "ppo" and current.config.get("judge_model"):
            chain.append(f"reward: direct judge {current.config['judge_model']} (d-RLAIF)")
        elif current.kind == "ppo" and current.parent_job_id is None:
            chain.append(f"reward model: {current.config.get('reward_model')}")
        if current.snapshot_id:
            snap = session.get(Snapshot, current.snapshot_id)
            if snap is not None:
                judges = ", ".join(snap.judge_versions or []) or "no AI judge"
                chain.append(
                    f"snapshot {snap.id}: {snap.n_human} human + {snap.n_ai} AI labels ({judges})"
                )
        current = session.get(TrainingJob, current.parent_job_id) if current.parent_job_id else None
    return chain


def evaluation_lines(session: Session, job_id: int) -> list[str]:
    """policy run -> evaluation -> pairs -> judge version, one line per evaluation."""
    lines = []
    for e in session.scalars(
        select(Evaluation).where(Evaluation.policy_job_id == job_id).order_by(Evaluation.id)
    ):
        judge = session.get(JudgeVersion, e.judge_version_id) if e.judge_version_id else None
        rate = (e.result or {}).get("ai_win_rate")
        rate_text = "–" if rate is None else f"{rate:.1%}"
        lines.append(
            f"evaluation {e.id}: against {e.baseline}, {e.n_prompts} prompts -> pairs of "
            f"source {e.pair_source} -> judge {judge.name if judge else '(none yet)'}; "
            f"AI win rate {rate_text} ({e.status})"
        )
    return lines


def make_snapshot(user: auth.AuthUser, min_confidence: float = 0.8, url: str | None = None):
    """Export the current merged labels as a new snapshot (admin only). Returns (id, n_human,
    n_ai)."""
    from pipeline.train.snapshots import create_snapshot

    with session_scope(url) as session:
        auth.authorize(session, user, "admin")
        snap = create_snapshot(session, min_confidence=min_confidence)
        return snap.id, snap.n_human, snap.n_ai


def snapshot_choices(session: Session, limit: int = 50) -> list[tuple[str, str]]:
    rows = session.scalars(select(Snapshot).order_by(Snapshot.created_at.desc()).limit(limit))
    return [
        (s.id, f"{s.id} · {s.created_at:%Y-%m-%d %H:%M} · {s.n_human} human + {s.n_ai} AI")
        for s in rows
    ]


def trained_reward_models(session: Session) -> list[tuple[str, str]]:
    """(model folder, label) of the reward models that finished."""
    rows = session.scalars(
        select(TrainingJob)
        .where(TrainingJob.kind == "reward", TrainingJob.status == JobStatus.SUCCEEDED)
        .order_by(TrainingJob.id.desc())
    )
    out = []
    for job in rows:
        acc = job.final_metrics.get("human_heldout_accuracy")
        acc_text = f", human held-out acc {acc:.3f}" if isinstance(acc, float) else ""
        if job.artifacts.get("model"):
            out.append((job.artifacts["model"], f"job {job.id} ({job.snapshot_id}{acc_text})"))
    return out


def samples(job: TrainingJob, last: int = 8) -> list[dict[str, Any]]:
    path = (job.artifacts or {}).get("samples") or (
        str(Path(job.output_dir) / "samples.jsonl") if job.output_dir else None
    )
    if not path or not Path(path).is_file():
        return []
    lines = Path(path).read_text(encoding="utf-8").splitlines()[-last:]
    return [json.loads(line) for line in lines if line.strip()]
