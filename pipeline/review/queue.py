"""The review queue: which pairs a reviewer should label next, and recording their answer.

Order, most urgent first (the issue's order): swap-inconsistent, judge versions disagree, the AI
contradicts another reviewer, then the lowest confidence; pairs no judge has seen come last.
The order comes from the denormalised columns on `pairs` (db/pair_state.py), and each query is
a range on the index ix_pairs_queue (human_label_count, queue_tier, min_confidence): one short
index scan per (tier, label count), so the first page costs the same at 1 M pairs as at 100.

A pair stays in the queue until `k` reviewers labelled it (the setting "human labels required
per pair"); a reviewer never sees a pair they labelled or skipped. An optional auto-accept
threshold takes confident, consistent AI labels out of the queue. A reviewer who opens a pair
holds it for a while (review/claims.py), so the next reviewer is shown the next pair instead
of the same one, also when both open the queue at the same instant (with k > 1, up to k
reviewers may hold a pair at once).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from db.app_settings import get_setting, set_setting
from db.enums import QueueTier
from db.labels import upsert_human_label
from db.models import (
    LABELS,
    AuditSampleItem,
    HumanLabel,
    Judgment,
    LabelAudit,
    Pair,
    utcnow,
)
from pipeline.auth.users import WRITE_ROLES, AuthUser, authorize
from pipeline.errors import UserError
from pipeline.review import claims
from pipeline.review.reads import load_pairs
from pipeline.review.types import (
    AUTO_ACCEPT_KEY,
    COUNT_CAP,
    MAX_REQUIRED_LABELS,
    REQUIRED_LABELS_KEY,
    SKIP_KIND,
    PairView,
    QueueFilters,
)

CLAIM_CANDIDATES, CLAIM_ROUNDS = 5, 4  # pairs tried per queue read; reads before giving up
# --- settings -------------------------------------------------------------------------------


def required_labels(session: Session) -> int:
    try:
        return max(1, int(get_setting(session, REQUIRED_LABELS_KEY, "1")))
    except ValueError:
        return 1


def auto_accept_threshold(session: Session) -> float | None:
    value = get_setting(session, AUTO_ACCEPT_KEY, "")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def update_queue_settings(
    session: Session,
    *,
    user: AuthUser,
    required: int | None = None,
    auto_accept: float | None = None,
    clear_auto_accept: bool = False,
) -> None:
    """Admin only: k (human labels required per pair) and the auto-accept confidence."""
    authorize(session, user, "admin")
    if required is not None:
        if not 1 <= required <= MAX_REQUIRED_LABELS:
            raise UserError(f"human labels required per pair must be 1..{MAX_REQUIRED_LABELS}")
        set_setting(session, REQUIRED_LABELS_KEY, str(int(required)))
    if clear_auto_accept:
        set_setting(session, AUTO_ACCEPT_KEY, "")
    elif auto_accept is not None:
        if not 0.0 < auto_accept <= 1.0:
            raise UserError("the auto-accept confidence must lie in (0, 1]")
        set_setting(session, AUTO_ACCEPT_KEY, repr(float(auto_accept)))


# --- the queue ------------------------------------------------------------------------------


def _filtered(query: Select, filters: QueueFilters) -> Select:
    if filters.source:
        query = query.where(Pair.source == filters.source)
    if filters.meta_key:
        query = query.where(Pair.meta[filters.meta_key].as_string() == (filters.meta_value or ""))
    lo, hi = filters.min_confidence, filters.max_confidence
    if filters.judge_version_id is not None:
        judged = [
            Judgment.pair_id == Pair.id,
            Judgment.judge_version_id == filters.judge_version_id,
        ]
        if lo is not None:
            judged.append(Judgment.confidence >= lo)
        if hi is not None:
            judged.append(Judgment.confidence <= hi)
        query = query.where(exists().where(*judged))
    else:
        if lo is not None:
            query = query.where(Pair.min_confidence >= lo)
        if hi is not None:
            query = query.where(Pair.min_confidence <= hi)
    if filters.audit_sample_id is not None:
        query = query.where(
            exists().where(
                AuditSampleItem.sample_id == filters.audit_sample_id,
                AuditSampleItem.pair_id == Pair.id,
            )
        )
    return query


def _not_seen_by(query: Select, username: str, label_count: int) -> Select:
    skipped = exists().where(
        LabelAudit.pair_id == Pair.id, LabelAudit.kind == SKIP_KIND, LabelAudit.actor == username
    )
    query = query.where(~skipped)
    if label_count > 0:  # with no labels yet, nobody can have labelled it
        query = query.where(
            ~exists().where(HumanLabel.pair_id == Pair.id, HumanLabel.annotator == username)
        )
    return query


def queue_pair_ids(
    session: Session,
    *,
    username: str,
    filters: QueueFilters = QueueFilters(),
    limit: int = 20,
    exclude: Collection[int] = (),
    k: int | None = None,
) -> list[int]:
    """Up to `limit` pair ids for `username`, most urgent first. Pairs that other reviewers
    hold (claim) with no label left for `username` are passed over. `k`: labels required per
    pair, when the caller has read it already."""
    k = k or required_labels(session)
    threshold = auto_accept_threshold(session)
    now = utcnow()
    found: list[int] = []
    for tier in QueueTier:
        candidates: list[tuple[bool, float, int, int]] = []
        want = limit - len(found) + len(exclude)
        for count in range(k):
            base = select(Pair.id, Pair.min_confidence).where(
                Pair.human_label_count == count, Pair.queue_tier == tier
            )
            if tier == QueueTier.LOW_CONFIDENCE and threshold is not None:
                base = base.where(Pair.min_confidence < threshold)
            base = _not_seen_by(_filtered(base, filters), username, count)
            base = base.where(claims.held_by_others(username, now) < k - count)
            # Two range scans, so NULL confidence sorts last on SQLite and PostgreSQL alike.
            parts = (
                base.where(Pair.min_confidence.is_not(None)).order_by(Pair.min_confidence, Pair.id),
                base.where(Pair.min_confidence.is_(None)).order_by(Pair.id),
            )
            for part in parts:
                for pair_id, confidence in session.execute(part.limit(want)):
                    candidates.append((confidence is None, confidence or 0.0, count, pair_id))
        candidates.sort()
        for *_, pair_id in candidates:
            if pair_id not in exclude and pair_id not in found:
                found.append(pair_id)
            if len(found) >= limit:
                return found
    return found


def queue_size(session: Session, *, username: str, filters: QueueFilters = QueueFilters()) -> int:
    """How many pairs wait for `username`, counted up to COUNT_CAP (then COUNT_CAP + 1)."""
    k = required_labels(session)
    threshold = auto_accept_threshold(session)
    total = 0
    for count in range(k):
        query = select(Pair.id).where(Pair.human_label_count == count)
        if threshold is not None:
            query = query.where(
                (Pair.queue_tier != QueueTier.LOW_CONFIDENCE) | (Pair.min_confidence < threshold)
            )
        query = _not_seen_by(_filtered(query, filters), username, count)
        capped = query.limit(COUNT_CAP + 1 - total).subquery()
        total += session.scalar(select(func.count()).select_from(capped))
        if total > COUNT_CAP:
            return COUNT_CAP + 1
    return total


def next_pairs(
    session: Session,
    *,
    username: str,
    filters: QueueFilters = QueueFilters(),
    limit: int = 1,
    exclude: Collection[int] = (),
) -> list[PairView]:
    ids = queue_pair_ids(session, username=username, filters=filters, limit=limit, exclude=exclude)
    return load_pairs(session, ids)


def claim_next_pair(
    session: Session,
    *,
    username: str,
    filters: QueueFilters = QueueFilters(),
    ttl_s: float = claims.CLAIM_TTL_S,
) -> PairView | None:
    """The most urgent pair for `username`, held for them for `ttl_s` seconds (renewed on each
    call while it stays their top pair). A reviewer holds one pair at a time, and no more than
    k reviewers hold or labelled a pair: two reviewers who open the queue in the same instant
    get different pairs when k = 1 (review/claims.py)."""
    claims.begin(session)
    k = required_labels(session)
    tried: set[int] = set()
    for _ in range(CLAIM_ROUNDS):
        ids = queue_pair_ids(
            session, username=username, filters=filters, limit=CLAIM_CANDIDATES, exclude=tried, k=k
        )
        for pair_id in ids:
            if claims.try_hold(session, username, pair_id, k, ttl_s):
                return load_pairs(session, [pair_id])[0]
            tried.add(pair_id)
        if len(ids) < CLAIM_CANDIDATES:
            break
    claims.hold(session, username, None, ttl_s)
    return None


# --- answers --------------------------------------------------------------------------------


def record_label(
    session: Session, *, user: AuthUser, pair_id: int, label: str, note: str | None = None
) -> bool:
    """Store `user`'s label (A, B or tie) with an optional note. Reviewers and admins only."""
    authorize(session, user, *WRITE_ROLES)
    if label not in LABELS:
        raise UserError(f"not a label: {label!r} (expected A, B or tie)")
    if session.get(Pair, pair_id) is None:
        raise UserError(f"no pair with id {pair_id}")
    note = (note or "").strip() or None
    claims.release(session, user.username, pair_id)
    return upsert_human_label(
        session, pair_id=pair_id, annotator=user.username, label=label, source="app", note=note
    )


def record_skip(session: Session, *, user: AuthUser, pair_id: int, note: str | None = None) -> None:
    """`user` passes on this pair: it leaves their queue (others still see it); logged."""
    authorize(session, user, *WRITE_ROLES)
    if session.get(Pair, pair_id) is None:
        raise UserError(f"no pair with id {pair_id}")
    claims.release(session, user.username, pair_id)
    session.add(
        LabelAudit(
            pair_id=pair_id,
            kind=SKIP_KIND,
            actor=user.username,
            old_value=None,
            new_value=None,
            reason=(note or "").strip() or "skipped",
        )
    )
    session.flush()
