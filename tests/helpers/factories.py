"""Small builders for test data, through the same write paths the product uses."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from db.label_rows import JudgmentRow
from db.labels import get_or_create_judge_version, upsert_human_label, upsert_judgments
from db.models import Pair, Prompt, Response
from pipeline.ingest.records import sha256


def make_pair(
    session: Session,
    external_id: str,
    prompt: str = "Which is better?",
    response_a: str | None = None,
    response_b: str | None = None,
    source: str = "test",
    meta: dict[str, Any] | None = None,
    system_a: str | None = None,
    system_b: str | None = None,
) -> Pair:
    prompt_row = session.query(Prompt).filter_by(text_hash=sha256(prompt)).one_or_none()
    if prompt_row is None:
        prompt_row = Prompt(text=prompt, text_hash=sha256(prompt))
        session.add(prompt_row)
        session.flush()
    responses = []
    for text in (response_a or f"{external_id} answer A", response_b or f"{external_id} answer B"):
        row = (
            session.query(Response)
            .filter_by(prompt_id=prompt_row.id, text_hash=sha256(text))
            .one_or_none()
        )  # two identical texts are one response row, as the importer stores them
        if row is None:
            row = Response(prompt_id=prompt_row.id, text=text, text_hash=sha256(text))
            session.add(row)
            session.flush()
        responses.append(row)
    pair = Pair(
        external_id=external_id,
        prompt_id=prompt_row.id,
        response_a_id=responses[0].id,
        response_b_id=responses[1].id,
        source=source,
        system_a=system_a,
        system_b=system_b,
        meta=meta or {},
        content_hash=sha256(external_id),
    )
    session.add(pair)
    session.flush()
    return pair


def make_pairs(session: Session, n: int, prefix: str = "p", **kwargs) -> list[Pair]:
    return [make_pair(session, f"{prefix}{i}", **kwargs) for i in range(n)]


def make_judge(session: Session, name: str = "judge-1", **kwargs):
    kwargs.setdefault("backend", "import")
    kwargs.setdefault("model_id", name)
    kwargs.setdefault("confidence_kind", "imported")
    return get_or_create_judge_version(session, name=name, **kwargs)


def judge_pair(session: Session, judge, pair: Pair, label: str, confidence: float = 0.9, **extra):
    """Record one AI judgment; p_a follows from label and confidence unless given."""
    if label == "A":
        p_a = confidence
    elif label == "B":
        p_a = 1 - confidence
    else:
        p_a = 0.5
    row = {"pair_id": pair.id, "label": label, "confidence": confidence, "p_a": p_a}
    row.update(extra)
    upsert_judgments(session, judge_version_id=judge.id, rows=[JudgmentRow(**row)])


def label_pair(session: Session, pair: Pair, annotator: str, label: str, source: str = "app"):
    upsert_human_label(session, pair_id=pair.id, annotator=annotator, label=label, source=source)
