"""Every write of a harmless rating goes through here: the judge's verdicts on single responses,
people's ratings (harmless / harmful) and their skips.

Like db/labels.py for pairs: each function takes a keyword-only `session`, locks the responses it
writes (`lock_responses`: another writer of the same responses waits until this transaction
ends), writes the audit log (HarmlessAudit), and never commits (the caller owns the
transaction). The lock makes the read-then-write of a rating safe: two tabs of one rater never
store two ratings or lose an audit row, and the audit's old values are the ones replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import (
    HARMLESS_LABELS,
    HARMLESS_VERDICTS,
    HarmlessAudit,
    HarmlessJudgment,
    HarmlessLabel,
    JudgeVersion,
    Response,
    utcnow,
)
from db.upsert import chunked, upsert

SKIP_KIND = "skip"


def lock_responses(session: Session, response_ids: Sequence[int]) -> None:
    """Hold the rating writes of `response_ids` for this transaction (db/pair_state.lock_pairs'
    scheme): PostgreSQL `FOR NO KEY UPDATE` row locks in ascending id order (inserting a rating
    takes FOR KEY SHARE on its response through the foreign key, which NO KEY UPDATE allows);
    SQLite a no-op UPDATE that takes the database write lock before anything is read."""
    ids = sorted(set(response_ids))
    if not ids:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        for batch in chunked(ids, 500):
            query = select(Response.id).where(Response.id.in_(batch)).order_by(Response.id)
            session.execute(query.with_for_update(key_share=True)).all()
    elif dialect == "sqlite":
        session.execute(
            update(Response)
            .where(Response.id == -1)
            .values(policy_id=Response.policy_id)
            .execution_options(synchronize_session=False)
        )


# --- the judge's verdicts -------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictRow:
    """One verdict of the harmless judge, as stored (failed: no verdict, the error kept)."""

    response_id: int
    verdict: str | None  # harmless | harmful | invalid; None when failed
    p_harmless: float | None
    confidence: float | None
    label_mass: float | None
    status: str  # ok | invalid | failed
    error: str | None = None


def upsert_harmless_judgments(
    session: Session, *, judge_version_id: int, rows: Sequence[VerdictRow], actor: str = "judge"
) -> None:
    """Insert or replace verdicts of one judge version; a verdict that changes (e.g. a failed
    one retried) is written to the audit log."""
    if not rows:
        return
    for row in rows:
        if row.verdict is not None and row.verdict not in HARMLESS_VERDICTS:
            raise ValueError(f"not a harmless verdict: {row.verdict!r}")
    ids = [row.response_id for row in rows]
    lock_responses(session, ids)
    old: dict[int, str | None] = {}
    for batch in chunked(ids):
        old.update(
            session.execute(
                select(HarmlessJudgment.response_id, HarmlessJudgment.verdict).where(
                    HarmlessJudgment.judge_version_id == judge_version_id,
                    HarmlessJudgment.response_id.in_(batch),
                )
            ).all()
        )
    now = utcnow()
    fields = ("verdict", "p_harmless", "confidence", "label_mass", "status", "error")
    values = [
        {
            "response_id": row.response_id,
            "judge_version_id": judge_version_id,
            "created_at": now,
            "updated_at": now,
            **{name: getattr(row, name) for name in fields},
        }
        for row in rows
    ]
    for part in chunked(values):
        upsert(
            session,
            HarmlessJudgment.__table__,
            part,
            keys=("response_id", "judge_version_id"),
            update=(*fields, "updated_at"),
        )
    judge_name = session.get(JudgeVersion, judge_version_id).name
    audits = [
        {
            "response_id": row.response_id,
            "kind": "ai",
            "actor": f"{actor}:{judge_name}",
            "old_value": old[row.response_id] or "failed",
            "new_value": row.verdict or "failed",
            "reason": row.error or "re-rated",
            "at": now,
        }
        for row in rows
        if row.response_id in old and old[row.response_id] != row.verdict
    ]
    for part in chunked(audits):
        session.execute(HarmlessAudit.__table__.insert(), part)


# --- people's ratings -----------------------------------------------------------------------


def upsert_harmless_label(
    session: Session,
    *,
    response_id: int,
    annotator: str,
    label: str,
    source: str,
    note: str | None = None,
    reason: str | None = None,
) -> bool:
    """Create or change `annotator`'s rating of a response. Returns True when something changed."""
    if label not in HARMLESS_LABELS:
        raise ValueError(f"not a harmless rating: {label!r} (expected harmless or harmful)")
    lock_responses(session, [response_id])
    existing = session.scalar(
        select(HarmlessLabel).where(
            HarmlessLabel.response_id == response_id, HarmlessLabel.annotator == annotator
        )
    )
    if existing and existing.label == label and (note is None or existing.note == note):
        return False
    old = existing.label if existing else None
    if existing:
        existing.label, existing.source, existing.updated_at = label, source, utcnow()
        if note is not None:
            existing.note = note
    else:
        session.add(
            HarmlessLabel(
                response_id=response_id, annotator=annotator, label=label, note=note, source=source
            )
        )
    if old != label:
        session.add(
            HarmlessAudit(
                response_id=response_id,
                kind="human",
                actor=annotator,
                old_value=old,
                new_value=label,
                reason=reason or f"rated via {source}",
            )
        )
    session.flush()
    return True


def record_harmless_skip(
    session: Session, *, response_id: int, annotator: str, note: str | None = None
) -> None:
    """`annotator` passes on this response: it leaves their list (others still see it); logged."""
    session.add(
        HarmlessAudit(
            response_id=response_id,
            kind=SKIP_KIND,
            actor=annotator,
            old_value=None,
            new_value=None,
            reason=(note or "").strip() or "skipped",
        )
    )
    session.flush()
