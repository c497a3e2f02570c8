"""Single-response harmless ratings: the harmless judge's verdicts, people's ratings, their
change log, the Rate responses page's claims, and each `rlaif harmless` report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from db.enums import JudgmentStatus
from db.models.base import HUMAN_SOURCES, JUDGMENT_STATUSES, SYSTEM_MAX_LENGTH, Base, utcnow
from db.models.shared_columns import AuditColumns, HumanLabelColumns

HARMLESS_LABELS = ("harmless", "harmful")  # a person's rating of one response
HARMLESS_VERDICTS = (*HARMLESS_LABELS, "invalid")  # the harmless judge's


class HarmlessJudgment(Base):
    """The harmless judge's verdict on ONE response, per judge version (params.task "harmless").
    A response is rated once per version, whichever system wrote it."""

    __tablename__ = "harmless_judgments"
    __table_args__ = (
        sa.UniqueConstraint("response_id", "judge_version_id"),
        sa.CheckConstraint(f"status IN {JUDGMENT_STATUSES}", name="status"),
        sa.CheckConstraint(f"verdict IN {HARMLESS_VERDICTS}", name="verdict"),
        sa.Index("ix_harmless_judgments_judge", "judge_version_id", "status", "response_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(sa.ForeignKey("responses.id"))
    judge_version_id: Mapped[int] = mapped_column(sa.ForeignKey("judge_versions.id"))
    verdict: Mapped[str | None] = mapped_column(sa.String(8))  # harmless | harmful | invalid
    p_harmless: Mapped[float | None] = mapped_column(sa.Float)  # softmax over the label tokens
    confidence: Mapped[float | None] = mapped_column(sa.Float)
    label_mass: Mapped[float | None] = mapped_column(sa.Float)
    status: Mapped[str] = mapped_column(sa.String(16), default=JudgmentStatus.OK)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow, onupdate=utcnow)


class HarmlessLabel(HumanLabelColumns, Base):
    """A person's rating of one response: harmless or harmful (one per response and person)."""

    __tablename__ = "harmless_labels"
    __table_args__ = (
        sa.UniqueConstraint("response_id", "annotator"),
        sa.CheckConstraint(f"label IN {HARMLESS_LABELS}", name="label"),
        sa.CheckConstraint(f"source IN {HUMAN_SOURCES}", name="source"),
        sa.Index("ix_harmless_labels_annotator", "annotator", "response_id"),
    )

    response_id: Mapped[int] = mapped_column(sa.ForeignKey("responses.id"))


class HarmlessAudit(AuditColumns, Base):
    """Append-only log of every change of a response's harmless rating, and of skips (kind
    human, ai or skip; the twin of LabelAudit for single responses). Code never updates or
    deletes a row."""

    __tablename__ = "harmless_audit"
    __table_args__ = (sa.Index("ix_harmless_audit_response", "response_id", "id"),)

    response_id: Mapped[int] = mapped_column(sa.ForeignKey("responses.id"))


class HarmlessClaim(Base):
    """A reviewer has this response open on the Rate responses page. Until it expires, the page
    shows other reviewers other responses (QueueClaim's twin for single responses)."""

    __tablename__ = "harmless_claims"

    response_id: Mapped[int] = mapped_column(sa.ForeignKey("responses.id"), primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime, index=True)


class HarmlessRun(Base):
    """One `rlaif harmless` report of a system: its rates and the judge's agreement with people
    at that moment, kept so that a later report can tell whether the judge drifted."""

    __tablename__ = "harmless_runs"
    __table_args__ = (sa.Index("ix_harmless_runs_judge", "judge_version_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(sa.String(SYSTEM_MAX_LENGTH))
    judge_version_id: Mapped[int] = mapped_column(sa.ForeignKey("judge_versions.id"))
    result: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    alignment: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_by: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
