"""Queue claims: a pair a reviewer has open is held for them for a while, so that the queue
shows the next reviewer the next pair instead of the same one."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from db.models import Pair, QueueClaim, utcnow
from db.upsert import upsert

CLAIM_TTL_S = 600  # a pair opened in the queue is held this long (renewed while it stays open)


def held_by_others(username: str, now: datetime):
    """SQL: how many other reviewers hold the pair now (a primary-key range per pair)."""
    return (
        select(func.count())
        .where(
            QueueClaim.pair_id == Pair.id,
            QueueClaim.username != username,
            QueueClaim.expires_at > now,
        )
        .scalar_subquery()
    )


def hold(session: Session, username: str, pair_id: int | None, ttl_s: float) -> None:
    """`username` holds `pair_id` (None: nothing) and no other pair; expired claims go."""
    now = utcnow()
    session.execute(delete(QueueClaim).where(QueueClaim.expires_at <= now))
    others = delete(QueueClaim).where(QueueClaim.username == username)
    if pair_id is None:
        session.execute(others)
        return
    session.execute(others.where(QueueClaim.pair_id != pair_id))
    claim = {"pair_id": pair_id, "username": username, "expires_at": now + timedelta(seconds=ttl_s)}
    upsert(
        session, QueueClaim.__table__, [claim], keys=("pair_id", "username"), update=("expires_at",)
    )


def release(session: Session, username: str, pair_id: int) -> None:
    session.execute(
        delete(QueueClaim).where(QueueClaim.pair_id == pair_id, QueueClaim.username == username)
    )
