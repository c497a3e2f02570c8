"""Server-side sign-in sessions: what the app's cookie stands for.

A session is a random 256-bit token, sent to the browser once in an HttpOnly cookie; the
database keeps only its sha256, so a copy of the database signs nobody in. A session ends at
sign-out, after `idle` without use, `lifetime` after sign-in, or when the user is deactivated or
their password is set (`pipeline.auth.users.update_user` revokes them all). Every script run
resolves the cookie again and re-reads the user's role and active flag.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from db.models import User, UserSession, utcnow
from pipeline.auth import throttle as signin_throttle
from pipeline.auth import users as auth
from pipeline.auth.settings import SessionSettings, session_settings
from pipeline.auth.users import AuthUser

COOKIE_NAME = "rlaif_session"
TOKEN_BYTES = 32  # 256 bits
# last_seen_at is written at most this often: a page run reads, it seldom writes.
TOUCH_EVERY = timedelta(seconds=60)
# One message for every failed sign-in: it never tells which of name or password was wrong.
FAILED = "Wrong user name or password."


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def create_session(
    session: Session,
    user: AuthUser,
    *,
    via: str,
    address: str | None = None,
    now: datetime | None = None,
    settings: SessionSettings | None = None,
) -> str:
    """Start a session for `user`; returns the token (for the cookie; never stored)."""
    now = now or utcnow()
    settings = settings or session_settings()
    token = new_token()
    session.add(
        UserSession(
            token_hash=hash_token(token),
            user_id=user.id,
            via=via,
            client_address=(address or None) and address[:64],
            created_at=now,
            last_seen_at=now,
            expires_at=now + settings.lifetime,
        )
    )
    session.flush()
    return token


def resolve(
    session: Session,
    token: str | None,
    *,
    now: datetime | None = None,
    settings: SessionSettings | None = None,
) -> AuthUser | None:
    """The signed-in user for a cookie's token, read fresh from the database, or None when the
    session is unknown, revoked, idle too long, past its lifetime, or the user is inactive."""
    if not token:
        return None
    now = now or utcnow()
    settings = settings or session_settings()
    row = session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == hash_token(token))
    ).first()
    if row is None:
        return None
    record, user = row
    if not _open(record, now, settings) or not user.active:
        return None
    if now - record.last_seen_at >= TOUCH_EVERY:
        record.last_seen_at = now
    return AuthUser.of(user, session_hash=record.token_hash)


def _open(record: UserSession, now: datetime, settings: SessionSettings) -> bool:
    return (
        record.revoked_at is None
        and now < record.expires_at
        and now - record.last_seen_at < settings.idle
    )


def is_open(session: Session, token_hash: str, now: datetime | None = None) -> bool:
    """Whether the session with this token hash is still open (for writes: pipeline.auth.users)."""
    record = session.scalar(select(UserSession).where(UserSession.token_hash == token_hash))
    return record is not None and _open(record, now or utcnow(), session_settings())


def revoke(session: Session, token: str | None, now: datetime | None = None) -> bool:
    """Sign-out: end this one session. True if it was open."""
    if not token:
        return False
    result = session.execute(
        update(UserSession)
        .where(UserSession.token_hash == hash_token(token), UserSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )
    return bool(result.rowcount)


@dataclass(frozen=True)
class SignInResult:
    user: AuthUser | None
    token: str | None = None
    message: str | None = None  # shown to the person when user is None
    retry_after: float = 0.0


def sign_in(
    session: Session,
    username: str,
    password: str,
    *,
    address: str | None,
    now: datetime | None = None,
) -> SignInResult:
    """Check name and password under the throttle; on success start a session. The caller
    commits in every case: failures must be recorded too."""
    now = now or utcnow()
    keys = signin_throttle.keys_for(username, address)
    wait = signin_throttle.retry_after(session, keys, now)
    if wait > 0:
        return SignInResult(
            None,
            message=f"Too many failed sign-ins. Try again in {_duration(wait)}.",
            retry_after=wait,
        )
    user = auth.authenticate(session, username, password)
    if user is None:
        signin_throttle.record_failure(session, keys, now)
        return SignInResult(None, message=FAILED)
    signin_throttle.record_success(session, keys)
    prune(session, now)
    return SignInResult(user, token=create_session(session, user, via="password", address=address))


def prune(session: Session, now: datetime) -> None:
    """Drop sessions past their lifetime and throttle counters already forgotten (at each
    successful sign-in: the tables stay as small as the activity of the last days)."""
    session.execute(delete(UserSession).where(UserSession.expires_at < now))
    signin_throttle.forget_old(session, now)


def _duration(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    return f"{round(seconds / 60)} min"
