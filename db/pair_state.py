"""Recompute the denormalised queue columns of `pairs` from judgments and human labels.

Every writer of judgments, human labels or overrides calls `lock_pairs` before it reads or writes
a pair's labels, and `refresh_pair_state` for the pairs it touched, in the same transaction.
The recount is set-based SQL, so it costs one statement per 500 pairs.

Why locks: a recount inside a writer's transaction is only right if no other writer of the same
pair can commit unseen. Row locks on the pairs, taken in ascending id order (so two writers never
wait on each other in a cycle), serialise the writers of each pair and nothing else: the last
writer to recount sees every label. SERIALIZABLE with retries would need a retry loop at every
caller (the app, the judge, imports, Argilla), and deriving the state at read time would give up
the index scan the 1 M-pair queue depends on.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, case, exists, func, select, text, update
from sqlalchemy.orm import Session, aliased

from db.enums import SETTLED_JUDGMENT_STATUSES, JudgmentStatus, QueueTier
from db.models import LABELS, HumanLabel, Judgment, Pair
from db.upsert import chunked


def consensus_subquery(pair_id_column):
    """Strict-majority human label of a pair, or NULL (an even split has no consensus)."""
    inner = aliased(HumanLabel)
    # Correlated to the enclosing human_labels row: SQLAlchemy correlates one level up only.
    total = (
        select(func.count())
        .where(inner.pair_id == HumanLabel.pair_id)
        .correlate(HumanLabel)
        .scalar_subquery()
    )
    return (
        select(HumanLabel.label)
        .where(HumanLabel.pair_id == pair_id_column)
        .group_by(HumanLabel.pair_id, HumanLabel.label)
        .having(2 * func.count() > total)
        .limit(1)
        .scalar_subquery()
    )


def _flag_values() -> dict:
    valid_ai = and_(
        Judgment.pair_id == Pair.id,
        Judgment.status == JudgmentStatus.OK,
        Judgment.label.in_(LABELS),
    )
    # An invalid AI label counts as confidence 0: a human should look at it first.
    effective_confidence = case(
        (Judgment.status == JudgmentStatus.INVALID, 0.0), else_=Judgment.confidence
    )
    return {
        Pair.human_label_count: select(func.count())
        .where(HumanLabel.pair_id == Pair.id)
        .scalar_subquery(),
        Pair.human_consensus: consensus_subquery(Pair.id),
        Pair.swap_inconsistent: exists().where(
            Judgment.pair_id == Pair.id, Judgment.swap_inconsistent.is_(True)
        ),
        Pair.judge_disagreement: select(func.count(func.distinct(Judgment.label)) > 1)
        .where(valid_ai)
        .scalar_subquery(),
        Pair.contradicts_human: exists()
        .where(valid_ai)
        .where(HumanLabel.pair_id == Pair.id, HumanLabel.label != Judgment.label),
        Pair.min_confidence: select(func.min(effective_confidence))
        .where(Judgment.pair_id == Pair.id, Judgment.status.in_(SETTLED_JUDGMENT_STATUSES))
        .scalar_subquery(),
    }


def _tier_value():
    return case(
        (Pair.swap_inconsistent.is_(True), QueueTier.SWAP_INCONSISTENT),
        (Pair.judge_disagreement.is_(True), QueueTier.JUDGE_DISAGREEMENT),
        (Pair.contradicts_human.is_(True), QueueTier.CONTRADICTS_HUMAN),
        (Pair.min_confidence.is_not(None), QueueTier.LOW_CONFIDENCE),
        else_=QueueTier.UNJUDGED,
    )


def lock_pairs(session: Session, pair_ids: Iterable[int] | None) -> None:
    """Hold the label writes of `pair_ids` (all pairs when None) for this transaction: another
    writer of the same pairs waits until it ends. Call it before reading the labels to change.

    PostgreSQL: `FOR NO KEY UPDATE` row locks in ascending id order. Once a writer holds them,
    its next READ COMMITTED statement sees every label the previous holder committed. NO KEY
    UPDATE, not UPDATE: inserting a label takes FOR KEY SHARE on its pair (the foreign key), which
    FOR UPDATE would conflict with, and two writers would deadlock.
    SQLite: a write takes the one database write lock (busy_timeout waits for it). pysqlite
    begins the transaction at the first write, so a no-op UPDATE takes the lock before anything
    is read, and every read after it is current; read-only sessions never wait.
    """
    ids = None if pair_ids is None else sorted(set(pair_ids))
    if ids == []:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        if ids is None:  # no writer of a single pair can commit until this one has
            session.execute(text("LOCK TABLE pairs IN SHARE ROW EXCLUSIVE MODE"))
            return
        for batch in chunked(ids, 500):
            query = select(Pair.id).where(Pair.id.in_(batch)).order_by(Pair.id)
            session.execute(query.with_for_update(key_share=True)).all()
    elif dialect == "sqlite":
        session.execute(  # matches no row: the statement alone takes the write lock
            update(Pair)
            .where(Pair.id == -1)
            .values(version=Pair.version)
            .execution_options(synchronize_session=False)
        )


def refresh_pair_state(
    session: Session, pair_ids: Iterable[int] | None = None, *, locked: bool = False
) -> None:
    """Recompute queue columns for `pair_ids` (all pairs when None). Never commits. Locks the
    pairs first unless the caller says it already did in this transaction (`locked`)."""
    session.flush()
    pair_ids = None if pair_ids is None else sorted(set(pair_ids))
    if not locked:
        lock_pairs(session, pair_ids)
    batches = [None] if pair_ids is None else list(chunked(pair_ids, 500))
    for batch in batches:
        where = [] if batch is None else [Pair.id.in_(batch)]
        session.execute(
            update(Pair)
            .where(*where)
            .values(_flag_values())
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Pair)
            .where(*where)
            .values({Pair.queue_tier: _tier_value()})
            .execution_options(synchronize_session=False)
        )
