"""The writes that pair judgments (db/labels.py) and single-response harmless ratings
(db/harmless.py) share: a judge version's verdicts upserted with an "ai" audit row per changed
verdict, and a person's label created or changed with a "human" audit row.

Each caller names its tables in a `VerdictTables`, validates the values, and locks the rows it
writes (lock_pairs / lock_responses) before calling in here, so that the old values read here
are the ones replaced. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import JudgmentStatus
from db.models import JudgeVersion, utcnow
from db.upsert import chunked, upsert


@dataclass(frozen=True)
class VerdictTables:
    """Where one kind of subject (a pair, a response) keeps its verdicts, labels and log."""

    judgment: type[Any]  # Judgment | HarmlessJudgment
    label: type[Any]  # HumanLabel | HarmlessLabel
    audit: type[Any]  # LabelAudit | HarmlessAudit
    subject: str  # the subject's column: "pair_id" | "response_id"
    verdict: str  # the judgment's verdict column: "label" | "verdict"
    changed_reason: str  # audit reason of a changed verdict without an error: "re-judged"
    given_via: str  # audit reason of a person's label, before its source: "labelled via"


def stored_verdicts(
    session: Session, tables: VerdictTables, judge_version_id: int, ids: Sequence[int]
) -> dict[int, str | None]:
    """The verdict this judge version has stored per subject (subjects never judged are absent)."""
    subject = getattr(tables.judgment, tables.subject)
    verdict = getattr(tables.judgment, tables.verdict)
    found: dict[int, str | None] = {}
    for batch in chunked(ids):
        found.update(
            session.execute(
                select(subject, verdict).where(
                    tables.judgment.judge_version_id == judge_version_id, subject.in_(batch)
                )
            ).all()
        )
    return found


def write_ai_verdicts(
    session: Session,
    tables: VerdictTables,
    *,
    judge_version_id: int,
    values: Sequence[Mapping[str, Any]],
    update: Sequence[str],
    actor: str,
) -> None:
    """Insert or replace `values` (a judgment's columns per subject, without the version and the
    timestamps) of one judge version, updating the `update` columns on a conflict. A verdict
    that changes (e.g. a failed one retried) gets an "ai" audit row by `actor:<judge name>`."""
    key = tables.subject
    old = stored_verdicts(session, tables, judge_version_id, [row[key] for row in values])
    now = utcnow()
    stamped = [
        {**row, "judge_version_id": judge_version_id, "created_at": now, "updated_at": now}
        for row in values
    ]
    for part in chunked(stamped):
        upsert(
            session,
            tables.judgment.__table__,
            part,
            keys=(key, "judge_version_id"),
            update=(*update, "updated_at"),
        )
    judge_name = session.get(JudgeVersion, judge_version_id).name
    audits = [
        {
            key: row[key],
            "kind": "ai",
            "actor": f"{actor}:{judge_name}",
            "old_value": old[row[key]] or JudgmentStatus.FAILED,
            "new_value": row[tables.verdict] or JudgmentStatus.FAILED,
            "reason": row.get("error") or tables.changed_reason,
            "at": now,
        }
        for row in values
        if row[key] in old and old[row[key]] != row[tables.verdict]
    ]
    for part in chunked(audits):
        session.execute(tables.audit.__table__.insert(), part)


def write_human_label(
    session: Session,
    tables: VerdictTables,
    *,
    subject_id: int,
    annotator: str,
    label: str,
    source: str,
    note: str | None,
    reason: str | None,
) -> bool:
    """Create or change `annotator`'s label on one subject (note None keeps the stored note);
    a changed label gets a "human" audit row. Returns True when something changed."""
    model = tables.label
    existing = session.scalar(
        select(model).where(
            getattr(model, tables.subject) == subject_id, model.annotator == annotator
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
        subject = {tables.subject: subject_id}
        session.add(model(**subject, annotator=annotator, label=label, note=note, source=source))
    if old != label:
        session.add(
            tables.audit(
                **{tables.subject: subject_id},
                kind="human",
                actor=annotator,
                old_value=old,
                new_value=label,
                reason=reason or f"{tables.given_via} {source}",
            )
        )
    return True
