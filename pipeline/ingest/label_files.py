"""`rlaif import labels`: human labels, or AI labels made elsewhere (e.g. by a hosted judge).

An AI label that is not A/B/tie (or 1/2/0) is stored as `invalid` with its raw text: it is never
dropped, and it counts in the metrics. A human label that is not a label is an input error.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import JudgmentStatus
from db.label_rows import HumanLabelRow, JudgmentRow
from db.labels import (
    get_or_create_judge_version,
    normalize_label,
    upsert_human_labels,
    upsert_judgments,
)
from db.models import Pair
from db.pair_state import refresh_pair_state
from pipeline.errors import InputError, UserError
from pipeline.ingest.readers import (
    RecordFile,
    SourceRecord,
    apply_column_map,
    batches,
    progress_bar,
)
from pipeline.ingest.values import (
    ANNOTATOR_MAX,
    JUDGE_NAME_MAX,
    cell_text,
    check_length,
    check_option,
    describe,
    scalar_text,
)

CHUNK = 2000
REQUIRED = {"human": ("pair_id", "annotator", "label"), "ai": ("pair_id", "label")}


@dataclass
class LabelImportStats:
    read: int = 0
    changed: int = 0
    invalid: int = 0

    def summary(self) -> str:
        text = f"{self.read} labels read, {self.changed} new or changed"
        return text + (
            f", {self.invalid} invalid AI labels kept as invalid" if self.invalid else ""
        )


def import_labels(
    session: Session,
    path: str | Path,
    *,
    kind: str,
    judge: str | None = None,
    column_map: dict[str, str] | None = None,
    progress: bool = True,
) -> LabelImportStats:
    if kind not in REQUIRED:
        raise UserError(f"--kind {kind!r}: expected 'human' or 'ai'")
    if kind == "ai" and not judge:
        raise UserError("--kind ai needs --judge NAME (the judge that made these labels)")
    if judge is not None:
        check_option("--judge", judge, JUDGE_NAME_MAX)
    file = RecordFile(path)
    stats = LabelImportStats()
    judge_id = None
    if kind == "ai":
        judge_id = get_or_create_judge_version(
            session, name=judge, backend="import", model_id=judge, confidence_kind="imported"
        ).id
    with progress_bar(file, "label", progress) as bar:
        for batch in batches(_read_labels(file, kind, column_map or {}), CHUNK):
            _write(session, file.path, batch, kind, judge_id, stats)
            bar.update(len(batch))
    return stats


def _read_labels(
    file: RecordFile, kind: str, column_map: dict[str, str]
) -> Iterator[tuple[SourceRecord, dict[str, Any]]]:
    for index, raw in enumerate(file):
        values = apply_column_map(file, raw, column_map, first=index == 0)
        for column in REQUIRED[kind]:
            if column not in values:
                raise InputError(file.path, raw.where, column, "missing required column")
        yield raw, values


def _text(path: Path, raw: SourceRecord, values: dict[str, Any], column: str) -> str | None:
    """A cell as text (numbers/booleans as JSON text), None when missing or empty."""
    text, _ = cell_text(path, raw.where, column, values.get(column))
    return text or None


def _required(path: Path, raw: SourceRecord, values: dict[str, Any], column: str) -> str:
    text = _text(path, raw, values, column)
    if text is None or not text.strip():
        raise InputError(path, raw.where, column, "is empty")
    return text.strip()


def _pair_ids(session: Session, path: Path, batch) -> list[int]:
    keys = [_required(path, raw, values, "pair_id") for raw, values in batch]
    known = dict(
        session.execute(select(Pair.external_id, Pair.id).where(Pair.external_id.in_(set(keys))))
        .tuples()
        .all()
    )
    ids = []
    for (raw, _), external_id in zip(batch, keys, strict=True):
        if external_id not in known:
            raise InputError(path, raw.where, "pair_id", f"unknown pair_id {external_id!r}")
        ids.append(known[external_id])
    return ids


def _write(session, path, batch, kind, judge_id, stats: LabelImportStats) -> None:
    pair_ids = _pair_ids(session, path, batch)
    stats.read += len(batch)
    if kind == "human":
        rows = [
            _human_row(path, raw, values, pair_id)
            for (raw, values), pair_id in zip(batch, pair_ids, strict=True)
        ]
        stats.changed += upsert_human_labels(
            session, rows, source="import", reason="labelled via import"
        )
        refresh_pair_state(session, pair_ids)
        return
    rows = {}
    for (raw, values), pair_id in zip(batch, pair_ids, strict=True):
        rows[pair_id] = _ai_row(path, raw, values, pair_id)  # a later line for a pair wins
        stats.invalid += rows[pair_id].label == JudgmentStatus.INVALID
    stats.changed += len(rows)
    upsert_judgments(session, judge_version_id=judge_id, rows=list(rows.values()), actor="import")


def _human_row(path, raw: SourceRecord, values: dict[str, Any], pair_id: int) -> HumanLabelRow:
    shown = _text(path, raw, values, "label")  # objects, arrays, bytes: an error here
    label = normalize_label(values["label"])
    if label is None:
        problem = "is empty" if shown is None else f"{shown!r} is not A, B or tie (1, 2, 0)"
        raise InputError(path, raw.where, "label", problem)
    annotator = _required(path, raw, values, "annotator")
    check_length(path, raw.where, "annotator", annotator, ANNOTATOR_MAX)
    note = _text(path, raw, values, "note")
    return HumanLabelRow(pair_id, annotator, label, note)


def _confidence(path, raw: SourceRecord, value: Any) -> float | None:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    shown = scalar_text(value) or (value if isinstance(value, str) else describe(value))
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(path, raw.where, "confidence", f"{shown} is not a number")
    try:
        confidence = float(value)
    except ValueError:
        raise InputError(path, raw.where, "confidence", f"{shown!r} is not a number") from None
    if math.isnan(confidence) or not 0.0 <= confidence <= 1.0:
        raise InputError(path, raw.where, "confidence", f"{confidence} is not in [0, 1]")
    return confidence


def _ai_row(path, raw: SourceRecord, values: dict[str, Any], pair_id: int) -> JudgmentRow:
    # The label as text: objects, arrays and bytes are an error here, never stored as a repr.
    original, _ = cell_text(path, raw.where, "label", values["label"])
    label = normalize_label(values["label"])
    confidence = _confidence(path, raw, values.get("confidence"))
    raw_output = _text(path, raw, values, "raw")
    if label is None:
        invalid = JudgmentStatus.INVALID
        return JudgmentRow(
            pair_id, label=invalid.value, status=invalid, raw_output=raw_output or original or ""
        )
    p_a = None
    if confidence is not None:
        p_a = {"A": confidence, "B": 1.0 - confidence, "tie": 0.5}[label]
    return JudgmentRow(
        pair_id,
        label=label,
        status=JudgmentStatus.OK,
        confidence=confidence,
        p_a=p_a,
        raw_output=raw_output,
    )
