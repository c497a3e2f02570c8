"""Sign-in throttling: failures are counted per user name (as typed, whether or not it exists)
and per client address, in the database so that every app process and restart sees them.

After `free_failures` failures a key is locked for `backoff_seconds`, doubling with each further
failure up to `backoff_max_seconds`; a key without a failure for `forget_seconds` starts at 0.
A success clears the user-name counter (the address keeps its count until it is forgotten).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import SignInThrottle
from pipeline.auth.settings import ThrottleSettings, throttle_settings

USER = "user"
ADDRESS = "address"


@dataclass(frozen=True)
class ThrottleKey:
    kind: str  # USER | ADDRESS
    key: str


def keys_for(username: str, address: str | None) -> list[ThrottleKey]:
    keys = [ThrottleKey(USER, username.strip().lower()[:256])]
    if address:
        keys.append(ThrottleKey(ADDRESS, address[:256]))
    return keys


def lock_seconds(failures: int, settings: ThrottleSettings) -> float:
    """How long a key with this many failures is locked (0 below the free failures)."""
    if failures < settings.free_failures:
        return 0.0
    return min(
        settings.backoff_max_seconds,
        settings.backoff_seconds * 2 ** (failures - settings.free_failures),
    )


def retry_after(session: Session, keys: list[ThrottleKey], now: datetime) -> float:
    """Seconds until a sign-in may be tried again for these keys (0: now)."""
    wait = 0.0
    for k in keys:
        row = session.get(SignInThrottle, (k.kind, k.key))
        if row is not None and row.locked_until is not None and row.locked_until > now:
            wait = max(wait, (row.locked_until - now).total_seconds())
    return wait


def record_failure(
    session: Session,
    keys: list[ThrottleKey],
    now: datetime,
    settings: ThrottleSettings | None = None,
) -> None:
    settings = settings or throttle_settings()
    forget = timedelta(seconds=settings.forget_seconds)
    for k in keys:
        row = _row(session, k, now)
        if now - row.last_failure_at > forget:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        seconds = lock_seconds(row.failures, settings)
        row.locked_until = now + timedelta(seconds=seconds) if seconds else None
    session.flush()


def record_success(session: Session, keys: list[ThrottleKey]) -> None:
    for k in keys:
        if k.kind == USER:
            session.execute(
                delete(SignInThrottle).where(
                    SignInThrottle.kind == k.kind, SignInThrottle.key == k.key
                )
            )


def forget_old(session: Session, now: datetime, settings: ThrottleSettings | None = None) -> None:
    settings = settings or throttle_settings()
    cutoff = now - timedelta(seconds=settings.forget_seconds)
    session.execute(
        delete(SignInThrottle).where(
            SignInThrottle.last_failure_at < cutoff,
            (SignInThrottle.locked_until.is_(None)) | (SignInThrottle.locked_until < now),
        )
    )


def _row(session: Session, k: ThrottleKey, now: datetime) -> SignInThrottle:
    row = session.get(SignInThrottle, (k.kind, k.key), with_for_update=True)
    if row is not None:
        return row
    try:
        with session.begin_nested():  # another process may insert the same key at once
            row = SignInThrottle(kind=k.kind, key=k.key, failures=0, last_failure_at=now)
            session.add(row)
            session.flush()
        return row
    except IntegrityError:
        return session.get(SignInThrottle, (k.kind, k.key), with_for_update=True)
