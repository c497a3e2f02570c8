"""The small key/value settings edited in the app (table `settings`); the keys belong to the
modules that read them (e.g. pipeline/review/types.py)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from db.models import Setting


def get_setting(session: Session, key: str, default: str) -> str:
    row = session.get(Setting, key)
    return row.value if row else default


def set_setting(session: Session, key: str, value: str) -> None:
    row = session.get(Setting, key)
    if row:
        row.value = value
    else:
        session.add(Setting(key=key, value=value))
