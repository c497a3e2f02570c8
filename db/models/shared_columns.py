"""Columns that a pair's tables and a single response's tables declare alike: a person's label
(human_labels / harmless_labels) and the append-only change log (label_audit /
harmless_audit). Each table adds its own subject column (pair_id or response_id) and its
constraints; `sort_order` keeps the id first and the subject second, as the migrations create
them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import utcnow


class HumanLabelColumns:
    """One person's label on one subject, where it was given (app, argilla, import) and when."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-1)
    annotator: Mapped[str] = mapped_column(sa.String(128))
    label: Mapped[str] = mapped_column(sa.String(8))
    note: Mapped[str | None] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow, onupdate=utcnow)


class AuditColumns:
    """One change of a subject's label: who (actor) did what (kind), from what to what, why."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-1)
    kind: Mapped[str] = mapped_column(sa.String(16))  # human | ai | skip | override | ...
    actor: Mapped[str] = mapped_column(sa.String(256))
    old_value: Mapped[str | None] = mapped_column(sa.String(32))
    new_value: Mapped[str | None] = mapped_column(sa.String(32))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
