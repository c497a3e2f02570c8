"""Every write of a label goes through here: human labels, AI judgments and overrides.

Each function takes a keyword-only `session`, locks the pairs it writes (db/pair_state.py:
another writer of the same pairs waits until this transaction ends), writes the audit log,
refreshes the pairs' queue state, and never commits (the caller owns the transaction).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.label_rows import HumanLabelRow, JudgmentRow
from db.models import (
    AI_LABELS,
    LABELS,
    HumanLabel,
    JudgeVersion,
    Judgment,
    LabelAudit,
    Pair,
    utcnow,
)
from db.pair_state import lock_pairs, refresh_pair_state
from db.upsert import chunked, upsert
from db.verdict_writes import VerdictTables, write_ai_verdicts, write_human_label

_ALIASES = {"a": "A", "b": "B", "tie": "tie", "1": "A", "2": "B", "0": "tie"}


def normalize_label(value: Any) -> str | None:
    """'A'/'B'/'tie' case-insensitively, with aliases 1->A, 2->B, 0->tie; None if not a label."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _ALIASES.get(str(value).strip().lower())


# --- judge versions -------------------------------------------------------------------------


def judge_fingerprint(identity: dict[str, Any]) -> str:
    """sha256 over the canonical JSON of everything that identifies an evaluator."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def get_or_create_judge_version(
    session: Session,
    *,
    name: str | None,
    backend: str,
    model_id: str,
    model_revision: str | None = None,
    template_hash: str | None = None,
    label_tokens: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    confidence_kind: str = "logprob",
) -> JudgeVersion:
    """The version pinned by these fields; a change in any of them is a new version.

    `name` is only a label for people: when it is None, or is already taken by a version with
    another identity, a suffix from the fingerprint keeps it unique.
    """
    identity = {
        "backend": backend,
        "model_id": model_id,
        "model_revision": model_revision,
        "template_hash": template_hash,
        "label_tokens": label_tokens or {},
        "params": params or {},
        "confidence_kind": confidence_kind,
    }
    fingerprint = judge_fingerprint(identity)
    found = session.scalar(select(JudgeVersion).where(JudgeVersion.fingerprint == fingerprint))
    if found:
        return found
    base_name = name or f"{backend}:{model_id.rstrip('/').split('/')[-1]}"
    final_name = base_name
    if session.scalar(select(JudgeVersion.id).where(JudgeVersion.name == base_name)):
        final_name = f"{base_name}@{fingerprint[:8]}"
    version = JudgeVersion(name=final_name, fingerprint=fingerprint, **identity)
    session.add(version)
    session.flush()
    return version


def judge_by_name(session: Session, name: str) -> JudgeVersion | None:
    return session.scalar(select(JudgeVersion).where(JudgeVersion.name == name))


# --- AI judgments ---------------------------------------------------------------------------


JUDGMENT_FIELDS = tuple(f.name for f in fields(JudgmentRow) if f.name != "pair_id")
PAIR_TABLES = VerdictTables(
    judgment=Judgment,
    label=HumanLabel,
    audit=LabelAudit,
    subject="pair_id",
    verdict="label",
    changed_reason="re-judged",
    given_via="labelled via",
)


def upsert_judgments(
    session: Session,
    *,
    judge_version_id: int,
    rows: Sequence[JudgmentRow],
    actor: str = "judge",
) -> None:
    """Insert or replace judgments of one judge version. A label that changes (e.g. a failed
    one retried) is written to the audit log."""
    if not rows:
        return
    for row in rows:
        if row.label is not None and row.label not in AI_LABELS:
            raise ValueError(f"not an AI label: {row.label!r}")
    pair_ids = [row.pair_id for row in rows]
    lock_pairs(session, pair_ids)
    values = [
        {
            **{field: getattr(row, field) for field in JUDGMENT_FIELDS},
            "pair_id": row.pair_id,
            "status": row.stored_status,
        }
        for row in rows
    ]
    write_ai_verdicts(
        session,
        PAIR_TABLES,
        judge_version_id=judge_version_id,
        values=values,
        update=JUDGMENT_FIELDS,
        actor=actor,
    )
    refresh_pair_state(session, pair_ids, locked=True)


# --- human labels ---------------------------------------------------------------------------


def upsert_human_label(
    session: Session,
    *,
    pair_id: int,
    annotator: str,
    label: str,
    source: str,
    note: str | None = None,
    reason: str | None = None,
    refresh: bool = True,
) -> bool:
    """Create or change `annotator`'s label on a pair. Returns True when something changed."""
    if label not in LABELS:
        raise ValueError(f"not a human label: {label!r} (expected A, B or tie)")
    lock_pairs(session, [pair_id])
    changed = write_human_label(
        session,
        PAIR_TABLES,
        subject_id=pair_id,
        annotator=annotator,
        label=label,
        source=source,
        note=note,
        reason=reason,
    )
    if changed and refresh:
        refresh_pair_state(session, [pair_id], locked=True)
    return changed


def withdraw_human_label(
    session: Session, *, pair_id: int, annotator: str, source: str, reason: str
) -> bool:
    """Delete `annotator`'s label on a pair when it came from `source` (e.g. an answer later
    discarded in Argilla). The audit log keeps it (new value None). Returns True if deleted."""
    lock_pairs(session, [pair_id])
    existing = session.scalar(
        select(HumanLabel).where(
            HumanLabel.pair_id == pair_id,
            HumanLabel.annotator == annotator,
            HumanLabel.source == source,
        )
    )
    if existing is None:
        return False
    session.add(
        LabelAudit(
            pair_id=pair_id,
            kind="human",
            actor=annotator,
            old_value=existing.label,
            new_value=None,
            reason=reason,
        )
    )
    session.delete(existing)
    session.flush()
    refresh_pair_state(session, [pair_id], locked=True)
    return True


def upsert_human_labels(
    session: Session, rows: Sequence[HumanLabelRow], *, source: str, reason: str
) -> int:
    """`upsert_human_label` set-wise, for imports: a few statements per 500 pairs, not a lookup
    per row. A later row for the same pair and annotator wins. The pairs are locked but their state
    is not refreshed (the caller refreshes once, in the same transaction). Returns how many
    labels were created or changed."""
    final: dict[tuple[int, str], HumanLabelRow] = {}
    for row in rows:
        if row.label not in LABELS:
            raise ValueError(f"not a human label: {row.label!r} (expected A, B or tie)")
        final[(row.pair_id, row.annotator)] = row
    lock_pairs(session, {pair_id for pair_id, _ in final})
    stored: dict[tuple[int, str], tuple[str, str | None]] = {}
    for batch in chunked(sorted({pair_id for pair_id, _ in final})):
        query = select(HumanLabel.pair_id, HumanLabel.annotator, HumanLabel.label, HumanLabel.note)
        for pair_id, annotator, label, note in session.execute(
            query.where(HumanLabel.pair_id.in_(batch))
        ):
            stored[(pair_id, annotator)] = (label, note)
    now = utcnow()
    with_note, keep_note, audits = [], [], []
    for key, row in final.items():
        old_label, old_note = stored.get(key, (None, None))
        note = row.note
        if old_label == row.label and (note is None or note == old_note):
            continue
        values = {
            "pair_id": key[0],
            "annotator": key[1],
            "label": row.label,
            "note": note,
            "source": source,
            "created_at": now,
            "updated_at": now,
        }
        (keep_note if note is None else with_note).append(values)
        if old_label != row.label:
            audits.append(
                {
                    "pair_id": key[0],
                    "kind": "human",
                    "actor": key[1],
                    "old_value": old_label,
                    "new_value": row.label,
                    "reason": reason,
                    "at": now,
                }
            )
    keys, changed = ("pair_id", "annotator"), ("label", "source", "updated_at")
    for part in chunked(with_note):
        upsert(session, HumanLabel.__table__, part, keys=keys, update=(*changed, "note"))
    for part in chunked(keep_note):
        upsert(session, HumanLabel.__table__, part, keys=keys, update=changed)
    for part in chunked(audits):
        session.execute(LabelAudit.__table__.insert(), part)
    return len(with_note) + len(keep_note)


@dataclass(frozen=True)
class OverrideResult:
    applied: bool
    message: str
    version: int


def override_pair_label(
    session: Session, *, pair_id: int, actor: str, label: str, reason: str, expected_version: int
) -> OverrideResult:
    """Set a pair's final label, with an optimistic version check.

    A writer whose `expected_version` is stale (someone saved after they opened the pair) is
    refused with a clear message; the refused attempt is still written to the audit log, so no
    one's change is lost from the history.
    """
    if label not in LABELS:
        raise ValueError(f"not a label: {label!r} (expected A, B or tie)")
    if not reason or not reason.strip():
        raise ValueError("an override needs a reason")
    lock_pairs(session, [pair_id])
    pair = session.get(Pair, pair_id)
    if pair is None:
        raise LookupError(f"no pair with id {pair_id}")
    old = pair.override_label
    result = session.execute(
        update(Pair)
        .where(Pair.id == pair_id, Pair.version == expected_version)
        .values(override_label=label, version=Pair.version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        session.add(
            LabelAudit(
                pair_id=pair_id,
                kind="override",
                actor=actor,
                old_value=old,
                new_value=label,
                reason=reason.strip(),
            )
        )
        refresh_pair_state(session, [pair_id], locked=True)
        session.refresh(pair)
        return OverrideResult(True, f"Label set to {label}.", pair.version)
    return _refused_override(
        session, pair, actor=actor, label=label, reason=reason, expected_version=expected_version
    )


def _refused_override(
    session: Session, pair: Pair, *, actor: str, label: str, reason: str, expected_version: int
) -> OverrideResult:
    """The stale writer's answer: who changed the pair meanwhile; their attempt is logged."""
    pair_id = pair.id
    session.refresh(pair)
    last = session.scalar(
        select(LabelAudit)
        .where(LabelAudit.pair_id == pair_id, LabelAudit.kind == "override")
        .order_by(LabelAudit.id.desc())
        .limit(1)
    )
    who = f"{last.actor} set it to {last.new_value} at {last.at:%H:%M:%S}" if last else "it changed"
    session.add(
        LabelAudit(
            pair_id=pair_id,
            kind="override_refused",
            actor=actor,
            old_value=pair.override_label,
            new_value=label,
            reason=f"stale version {expected_version}: {reason.strip()}",
        )
    )
    return OverrideResult(
        False,
        f"Not saved: this pair changed after you opened it ({who}). "
        "Your attempt is in the history; reload the pair and decide again.",
        pair.version,
    )
