"""What is said about a pair: judge versions and their judgments, direct scores, human
labels, the label change log, queue claims and spot-check samples."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.enums import JudgmentStatus
from db.models.base import HUMAN_SOURCES, JUDGMENT_STATUSES, LABELS, Base, utcnow
from db.models.shared_columns import AuditColumns, HumanLabelColumns


class JudgeVersion(Base):
    """Everything that pins an evaluator. Any change of identity is a new version."""

    __tablename__ = "judge_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(256), unique=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64), unique=True)
    backend: Mapped[str] = mapped_column(sa.String(64))
    model_id: Mapped[str] = mapped_column(sa.String(512))
    model_revision: Mapped[str | None] = mapped_column(sa.String(128))
    template_hash: Mapped[str | None] = mapped_column(sa.String(64))
    label_tokens: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    # "logprob" (label-token probabilities), "sampled" (k-sample vote: weaker),
    # "reward_model", or "imported" (given by the file, not ours to vouch for).
    confidence_kind: Mapped[str] = mapped_column(sa.String(32), default="logprob")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)


class Judgment(Base):
    __tablename__ = "judgments"
    __table_args__ = (
        sa.UniqueConstraint("pair_id", "judge_version_id"),
        sa.CheckConstraint(f"status IN {JUDGMENT_STATUSES}", name="status"),
        sa.Index("ix_judgments_judge_status", "judge_version_id", "status"),
        sa.Index("ix_judgments_judge_queue", "judge_version_id", "swap_inconsistent", "confidence"),
        # Covering index for the alignment metrics: per-judge totals, the confidence histogram
        # and the position-bias counts are index-only scans (the table rows carry raw outputs).
        sa.Index(
            "ix_judgments_alignment",
            "judge_version_id",
            "status",
            "label",
            "swap_inconsistent",
            "confidence",
            "p_a_ab",
            "p_a_ba",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(sa.ForeignKey("pairs.id"))
    judge_version_id: Mapped[int] = mapped_column(sa.ForeignKey("judge_versions.id"))
    label: Mapped[str | None] = mapped_column(sa.String(8))  # A | B | tie | invalid; None if failed
    p_a: Mapped[float | None] = mapped_column(sa.Float)  # P(A preferred), both orders combined
    confidence: Mapped[float | None] = mapped_column(sa.Float)
    p_a_ab: Mapped[float | None] = mapped_column(sa.Float)  # P(A) with A shown first
    p_a_ba: Mapped[float | None] = mapped_column(sa.Float)  # P(A) with A shown second
    swap_inconsistent: Mapped[bool | None] = mapped_column(sa.Boolean)
    raw_output: Mapped[str | None] = mapped_column(sa.Text)
    rationale: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default=JudgmentStatus.OK)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow, onupdate=utcnow)

    judge_version: Mapped[JudgeVersion] = relationship(lazy="joined")


class ResponseScore(Base):
    """Direct (d-RLAIF) score of one response by one judge version, in [-1, 1]."""

    __tablename__ = "response_scores"
    __table_args__ = (sa.UniqueConstraint("response_id", "judge_version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(sa.ForeignKey("responses.id"))
    judge_version_id: Mapped[int] = mapped_column(sa.ForeignKey("judge_versions.id"))
    score: Mapped[float] = mapped_column(sa.Float)
    expected_rating: Mapped[float] = mapped_column(sa.Float)  # sum k * P(k), 1..10
    digit_probs: Mapped[list[Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)


class HumanLabel(HumanLabelColumns, Base):
    """A person's label on a pair: A, B or tie (one per pair and person)."""

    __tablename__ = "human_labels"
    __table_args__ = (
        sa.UniqueConstraint("pair_id", "annotator"),
        sa.CheckConstraint(f"label IN {LABELS}", name="label"),
        sa.CheckConstraint(f"source IN {HUMAN_SOURCES}", name="source"),
        sa.Index("ix_human_labels_annotator", "annotator", "pair_id"),
    )

    pair_id: Mapped[int] = mapped_column(sa.ForeignKey("pairs.id"))


class LabelAudit(AuditColumns, Base):
    """Append-only log of every label change (kind human, ai, override or override_refused).
    Code never updates or deletes a row."""

    __tablename__ = "label_audit"
    __table_args__ = (sa.Index("ix_label_audit_pair", "pair_id", "id"),)

    pair_id: Mapped[int] = mapped_column(sa.ForeignKey("pairs.id"))


class QueueClaim(Base):
    """A reviewer has this pair open in the review queue. Until it expires, the queue shows
    other reviewers other pairs (with k labels required per pair, up to k may hold it)."""

    __tablename__ = "queue_claims"

    pair_id: Mapped[int] = mapped_column(sa.ForeignKey("pairs.id"), primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime, index=True)


class AuditSample(Base):
    """A seeded, confidence-stratified spot-check sample, stored so progress can be followed."""

    __tablename__ = "audit_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128), unique=True)
    judge_version_id: Mapped[int | None] = mapped_column(sa.ForeignKey("judge_versions.id"))
    seed: Mapped[int] = mapped_column(sa.Integer)
    size: Mapped[int] = mapped_column(sa.Integer)
    created_by: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)


class AuditSampleItem(Base):
    __tablename__ = "audit_sample_items"

    sample_id: Mapped[int] = mapped_column(sa.ForeignKey("audit_samples.id"), primary_key=True)
    pair_id: Mapped[int] = mapped_column(sa.ForeignKey("pairs.id"), primary_key=True)
    stratum: Mapped[int] = mapped_column(sa.Integer)
    # Inverse inclusion probability: weights the stratified estimate back to the pool.
    weight: Mapped[float] = mapped_column(sa.Float)
