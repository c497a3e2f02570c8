"""What a pair looks like in Argilla: the dataset settings, the record id, and the record's
content (fields, metadata, the judge's suggestion), hashed so a re-push can skip unchanged ones.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import argilla as rg

from db.enums import JudgmentStatus, QueueTier
from db.models import (
    LABELS,
    Judgment,
    Pair,
)

QUESTION = "preference"
NOTE_QUESTION = "note"
RECORD_PREFIX = "pair-"
REVIEWED = "reviewed"  # enough human labels, or overridden: no longer in the review queue


def _reason(tier: int | None) -> str:
    """The queue tier's machine name; a pair outside the tiers counts as unjudged."""
    try:
        return QueueTier(tier).reason
    except ValueError:
        return "unjudged"


def record_id(pair_id: int) -> str:
    return f"{RECORD_PREFIX}{pair_id}"


def pair_id_of(record_external_id: str | None) -> int | None:
    if not record_external_id or not record_external_id.startswith(RECORD_PREFIX):
        return None
    tail = record_external_id[len(RECORD_PREFIX) :]
    return int(tail) if tail.isdigit() else None


def system_properties() -> list[rg.TermsMetadataProperty]:
    """Which system wrote each response (absent when the pair does not say)."""
    return [
        rg.TermsMetadataProperty(name="system_a", title="System of response A"),
        rg.TermsMetadataProperty(name="system_b", title="System of response B"),
    ]


def add_missing_system_properties(dataset: rg.Dataset) -> None:
    """A dataset created before systems existed gets their metadata properties (it accepts no
    extra metadata, so records carrying systems would be refused)."""
    names = {prop.name for prop in dataset.settings.metadata}
    missing = [prop for prop in system_properties() if prop.name not in names]
    for prop in missing:
        dataset.settings.metadata.add(prop)
    if missing:
        dataset.update()


def dataset_settings() -> rg.Settings:
    return rg.Settings(
        guidelines="Which response is better? A, B, or tie. The suggestion is the AI judge's "
        "label; its score is the judge's confidence.",
        fields=[
            rg.TextField(name="prompt", title="Prompt"),
            rg.TextField(name="response_a", title="Response A"),
            rg.TextField(name="response_b", title="Response B"),
        ],
        questions=[
            rg.LabelQuestion(name=QUESTION, title="Which response is better?", labels=list(LABELS)),
            rg.TextQuestion(name=NOTE_QUESTION, title="Note (optional)", required=False),
        ],
        metadata=[
            rg.TermsMetadataProperty(name="judge", title="Judge version"),
            rg.FloatMetadataProperty(name="confidence", title="Judge confidence"),
            rg.TermsMetadataProperty(name="swap_inconsistent", title="Swap-inconsistent"),
            rg.TermsMetadataProperty(name="source", title="Source"),
            rg.TermsMetadataProperty(name="queue_reason", title="Queue reason"),
            *system_properties(),
        ],
        allow_extra_metadata=False,
    )


def record_content(
    pair: Pair, judgment: Judgment | None, judge_name: str | None, required: int
) -> dict[str, Any]:
    """What the Argilla record of a pair holds: fields, metadata and the judge's suggestion."""
    reviewed = pair.override_label is not None or pair.human_label_count >= required
    metadata: dict[str, Any] = {
        "judge": judge_name or "none",
        "swap_inconsistent": "yes" if pair.swap_inconsistent else "no",
        "source": pair.source,
        "queue_reason": REVIEWED if reviewed else _reason(pair.queue_tier),
    }
    # Only when set: a pair without systems keeps the record (and hash) it had before.
    for slot, system in (("system_a", pair.system_a), ("system_b", pair.system_b)):
        if system is not None:
            metadata[slot] = system
    suggestion = None
    if judgment is not None:
        metadata["swap_inconsistent"] = "yes" if judgment.swap_inconsistent else "no"
        if judgment.confidence is not None:
            metadata["confidence"] = float(judgment.confidence)
        if judgment.status == JudgmentStatus.OK and judgment.label in LABELS:
            score = judgment.confidence
            suggestion = {
                "value": judgment.label,
                "score": None if score is None else min(1.0, max(0.0, float(score))),
                "agent": judge_name,
            }
    return {
        "id": record_id(pair.id),
        "fields": {
            "prompt": pair.prompt.text,
            "response_a": pair.response_a.text,
            "response_b": pair.response_b.text,
        },
        "metadata": metadata,
        "suggestion": suggestion,
    }


def content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]


def build_record(
    pair: Pair, judgment: Judgment | None, judge_name: str | None, required: int
) -> rg.Record:
    return to_record(record_content(pair, judgment, judge_name, required))


def to_record(content: dict[str, Any]) -> rg.Record:
    suggestion = content["suggestion"]
    return rg.Record(
        id=content["id"],
        fields=content["fields"],
        metadata=content["metadata"],
        suggestions=[rg.Suggestion(question_name=QUESTION, **suggestion)] if suggestion else [],
    )
