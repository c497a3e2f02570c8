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
    Response,
)
from db.upsert import chunked
from db.verdict_writes import VerdictTables, write_ai_verdicts, write_human_label

SKIP_KIND = "skip"
RESPONSE_TABLES = VerdictTables(
    judgment=HarmlessJudgment,
    label=HarmlessLabel,
    audit=HarmlessAudit,
    subject="response_id",
    verdict="verdict",
    changed_reason="re-rated",
    given_via="rated via",
)


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


VERDICT_FIELDS = ("verdict", "p_harmless", "confidence", "label_mass", "status", "error")


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
    lock_responses(session, [row.response_id for row in rows])
    values = [
        {"response_id": row.response_id, **{name: getattr(row, name) for name in VERDICT_FIELDS}}
        for row in rows
    ]
    write_ai_verdicts(
        session,
        RESPONSE_TABLES,
        judge_version_id=judge_version_id,
        values=values,
        update=VERDICT_FIELDS,
        actor=actor,
    )


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
    changed = write_human_label(
        session,
        RESPONSE_TABLES,
        subject_id=response_id,
        annotator=annotator,
        label=label,
        source=source,
        note=note,
        reason=reason,
    )
    if changed:
        session.flush()
    return changed


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
