"""People: accounts, signed-in sessions, the sign-in throttle, and the settings they edit."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import ROLES, Base, utcnow


class User(Base):
    __tablename__ = "users"
    __table_args__ = (sa.CheckConstraint(f"role IN {ROLES}", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    role: Mapped[str] = mapped_column(sa.String(16))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    # Single sign-on maps a provider's verified e-mail to this user (stored lower-case).
    email: Mapped[str | None] = mapped_column(sa.String(256), unique=True)


class UserSession(Base):
    """A signed-in browser. The cookie holds a random token; only its sha256 is stored here."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    via: Mapped[str] = mapped_column(sa.String(16))  # password | oidc
    client_address: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime)  # the absolute lifetime
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class SignInThrottle(Base):
    """Failed sign-ins per user name and per client address, for the exponential back-off."""

    __tablename__ = "sign_in_throttle"

    kind: Mapped[str] = mapped_column(sa.String(8), primary_key=True)  # user | address
    key: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    failures: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(sa.DateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(sa.DateTime)


class Setting(Base):
    """Small key/value settings edited in the app (e.g. human labels required per pair)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(256))
