"""Queue claims: a pair a reviewer has open is held for them for a while, so that the queue
shows the next reviewer the next pair instead of the same one.

A claim is atomic: `begin` and `try_hold` make choosing a pair and holding it one step for
every other reviewer. On PostgreSQL the candidate pair's row is locked with
`FOR NO KEY UPDATE SKIP LOCKED` (a reviewer claiming it at this instant makes the other pass on
to the next pair instead of waiting) and the claims are counted again under the lock; on SQLite
the first write (deleting expired claims) takes the database write lock before the queue is read.
"""

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


def begin(session: Session) -> None:
    """Start a claim: expired claims go. Call it before reading the queue: on SQLite this write
    takes the write lock, and on PostgreSQL it runs before any pair is locked (a claim that
    waits on another reviewer's transaction here holds no pair that the other could wait for)."""
    session.execute(delete(QueueClaim).where(QueueClaim.expires_at <= utcnow()))


def try_hold(session: Session, username: str, pair_id: int, k: int, ttl_s: float) -> bool:
    """Hold `pair_id` for `username` if fewer than k reviewers label or hold it; False when
    another reviewer is claiming or labelling it right now, or it is full."""
    now = utcnow()
    locked = (
        select(Pair.id).where(Pair.id == pair_id).with_for_update(key_share=True, skip_locked=True)
    )
    if session.get_bind().dialect.name == "postgresql" and session.scalar(locked) is None:
        return False
    # A fresh statement after the lock: it sees claims and labels committed before it.
    count, held = session.execute(
        select(Pair.human_label_count, held_by_others(username, now)).where(Pair.id == pair_id)
    ).one()
    if count + held >= k:
        return False
    hold(session, username, pair_id, ttl_s)
    return True


def hold(session: Session, username: str, pair_id: int | None, ttl_s: float) -> None:
    """`username` holds `pair_id` (None: nothing) and no other pair."""
    hold_item(session, QueueClaim, "pair_id", username, pair_id, ttl_s)


def release(session: Session, username: str, pair_id: int) -> None:
    release_item(session, QueueClaim, "pair_id", username, pair_id)


def hold_item(
    session: Session, model, key: str, username: str, item_id: int | None, ttl_s: float
) -> None:
    """`username` holds `item_id` in the claim table `model` (keyed by `key` and username;
    None: nothing) and no other item of it. Shared by pair claims and response claims."""
    others = delete(model).where(model.username == username)
    if item_id is None:
        session.execute(others)
        return
    session.execute(others.where(getattr(model, key) != item_id))
    claim = {key: item_id, "username": username, "expires_at": utcnow() + timedelta(seconds=ttl_s)}
    upsert(session, model.__table__, [claim], keys=(key, "username"), update=("expires_at",))


def release_item(session: Session, model, key: str, username: str, item_id: int) -> None:
    session.execute(delete(model).where(getattr(model, key) == item_id, model.username == username))
