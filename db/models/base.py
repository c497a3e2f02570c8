"""The declarative base, the constraint naming convention, and the value sets the models'
CHECK constraints are written from."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, MetaData
from sqlalchemy.orm import DeclarativeBase

from db.enums import JobStatus, JudgmentStatus, values

# Stable constraint names for Alembic (SQLAlchemy docs' recommended convention).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

LABELS = ("A", "B", "tie")
AI_LABELS = (*LABELS, JudgmentStatus.INVALID.value)
JUDGMENT_STATUSES = values(JudgmentStatus)
ROLES = ("admin", "reviewer", "viewer")
HUMAN_SOURCES = ("app", "argilla", "import")
JOB_STATUSES = values(JobStatus)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


SYSTEM_MAX_LENGTH = 256


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}
