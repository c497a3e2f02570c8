"""Snapshots of merged labels, the training jobs that read them and their metrics, and
policy evaluations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from db.enums import EvaluationStatus, JobStatus
from db.models.base import JOB_STATUSES, SYSTEM_MAX_LENGTH, Base, utcnow


class Snapshot(Base):
    """One export of merged labels; a trained model points back here."""

    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    rule: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    n_human: Mapped[int] = mapped_column(sa.Integer)
    n_ai: Mapped[int] = mapped_column(sa.Integer)
    path: Mapped[str | None] = mapped_column(sa.String(1024))  # absolute: lineage from any folder
    judge_versions: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    # sha256 over the exported files (pipeline.train.snapshots.content_hash); None for older
    # snapshots.
    content_hash: Mapped[str | None] = mapped_column(sa.String(64))


class SnapshotItem(Base):
    __tablename__ = "snapshot_items"

    snapshot_id: Mapped[str] = mapped_column(sa.ForeignKey("snapshots.id"), primary_key=True)
    pair_id: Mapped[int] = mapped_column(sa.ForeignKey("pairs.id"), primary_key=True)
    label_source: Mapped[str] = mapped_column(sa.String(16))  # override | human | ai
    label: Mapped[str] = mapped_column(sa.String(8))
    judgment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("judgments.id"))
    human_label_ids: Mapped[list[Any] | None] = mapped_column(sa.JSON)
    p_chosen: Mapped[float] = mapped_column(sa.Float)


class TrainingJob(Base):
    __tablename__ = "training_jobs"
    __table_args__ = (sa.CheckConstraint(f"status IN {JOB_STATUSES}", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # reward | ppo
    status: Mapped[str] = mapped_column(sa.String(16), default=JobStatus.QUEUED)
    config: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    snapshot_id: Mapped[str | None] = mapped_column(sa.ForeignKey("snapshots.id"))
    parent_job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("training_jobs.id"))
    created_by: Mapped[str] = mapped_column(sa.String(128))
    pid: Mapped[int | None] = mapped_column(sa.Integer)
    output_dir: Mapped[str | None] = mapped_column(sa.String(1024), unique=True)
    log_path: Mapped[str | None] = mapped_column(sa.String(1024))
    artifacts: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    final_metrics: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class JobMetric(Base):
    __tablename__ = "job_metrics"
    __table_args__ = (sa.Index("ix_job_metrics_job_step", "job_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("training_jobs.id"))
    step: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.String(128))
    value: Mapped[float] = mapped_column(sa.Float)
    at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)


class Evaluation(Base):
    """One policy evaluation: a policy against a baseline on held-out prompts, judged by one
    pinned judge version. Lineage: policy run -> evaluation -> pairs (Pair.source ==
    pair_source) -> judge version; the judge's alignment with people at that moment is kept so
    the next evaluation can tell whether it drifted."""

    __tablename__ = "evaluations"
    __table_args__ = (sa.Index("ix_evaluations_policy_job", "policy_job_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy: Mapped[str] = mapped_column(sa.String(SYSTEM_MAX_LENGTH))  # system name on the pairs
    policy_path: Mapped[str] = mapped_column(sa.String(1024))
    policy_job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("training_jobs.id"))
    baseline: Mapped[str] = mapped_column(sa.String(SYSTEM_MAX_LENGTH))
    baseline_path: Mapped[str] = mapped_column(sa.String(1024))
    judge_version_id: Mapped[int | None] = mapped_column(sa.ForeignKey("judge_versions.id"))
    snapshot_id: Mapped[str | None] = mapped_column(sa.ForeignKey("snapshots.id"))
    audit_sample_id: Mapped[int | None] = mapped_column(sa.ForeignKey("audit_samples.id"))
    pair_source: Mapped[str] = mapped_column(sa.String(128), unique=True)
    prompt_source: Mapped[str] = mapped_column(sa.String(1024))  # how the prompts were chosen
    n_prompts: Mapped[int] = mapped_column(sa.Integer, default=0)
    decoding: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default=EvaluationStatus.RUNNING)
    # The result (win rates) and the judge's alignment figures at this moment (for drift).
    result: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    alignment: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_by: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
