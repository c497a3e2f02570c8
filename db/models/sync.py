"""Argilla: what the last push sent, and every sync run."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, utcnow


class ArgillaPushed(Base):
    """What the last successful push sent to an Argilla dataset, per pair: a re-push sends only
    records whose content changed."""

    __tablename__ = "argilla_pushed"

    # url | workspace | dataset
    target: Mapped[str] = mapped_column(sa.String(512), primary_key=True)
    pair_id: Mapped[int] = mapped_column(sa.ForeignKey("pairs.id"), primary_key=True)
    content_hash: Mapped[str] = mapped_column(sa.String(32))
    pushed_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)


class SyncRun(Base):
    """One Argilla push/pull/sync, successful or not (failures are recorded, never dropped)."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[str] = mapped_column(sa.String(8))  # push | pull | sync
    status: Mapped[str] = mapped_column(sa.String(16))  # a db.enums.SyncStatus
    pushed: Mapped[int] = mapped_column(sa.Integer, default=0)
    pulled: Mapped[int] = mapped_column(sa.Integer, default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
