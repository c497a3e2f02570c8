"""Turn raw file records into validated pairs: canonical columns, or chosen/rejected data."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pipeline.errors import InputError

CANONICAL = ("id", "prompt", "response_a", "response_b", "metadata", "system_a", "system_b")
SYSTEM_MAX_LENGTH = 256
ASSISTANT_TURN = "\n\nAssistant:"


@dataclass
class PairRecord:
    external_id: str
    prompt: str
    response_a: str
    response_b: str
    meta: dict[str, Any] = field(default_factory=dict)
    preferred: str | None = None  # "A"/"B" when the file says which one people preferred
    where: str = ""
    system_a: str | None = None  # which system wrote each response, when the file says
    system_b: str | None = None

    @cached_property
    def content_hash(self) -> str:
        payload: list[Any] = [self.prompt, self.response_a, self.response_b, self.meta]
        if self.system_a is not None or self.system_b is not None:
            # Only then: a pair without systems keeps the hash it had before systems existed.
            payload.append([self.system_a, self.system_b])
        return sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _text(path, where: str, values: dict[str, Any], column: str, required: bool = True) -> str:
    if column not in values:
        if required:
            raise InputError(path, where, column, "missing required column")
        return ""
    value = values[column]
    if isinstance(value, list):  # TRL conversational format: a list of {role, content}
        value = "\n\n".join(
            f"{m.get('role', '').capitalize()}: {m.get('content', '')}"
            if isinstance(m, dict)
            else str(m)
            for m in value
        )
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        value = ""
    value = str(value)
    if required and not value.strip():
        raise InputError(path, where, column, "is empty")
    return value


def _system(path, where: str, values: dict[str, Any], column: str) -> str | None:
    """An optional system name: a string of at most SYSTEM_MAX_LENGTH characters; blank is none."""
    value = values.get(column)
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(path, where, column, f"must be a string, not {type(value).__name__}")
    text = str(value).strip()
    if len(text) > SYSTEM_MAX_LENGTH:
        raise InputError(
            path, where, column, f"is {len(text)} characters long (at most {SYSTEM_MAX_LENGTH})"
        )
    return text or None


def _metadata(path, where: str, values: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    meta = values.get("metadata") or {}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta) if meta.strip() else {}
        except json.JSONDecodeError:
            raise InputError(path, where, "metadata", "is not valid JSON") from None
    if not isinstance(meta, dict):
        raise InputError(path, where, "metadata", "must be an object")
    # Other columns are kept as metadata, so nothing in the file is silently dropped.
    extra = {k: v for k, v in values.items() if k not in skip and k != "metadata" and v is not None}
    return {**extra, **meta}


def _external_id(path, where: str, values: dict[str, Any], *parts: str) -> str:
    raw = values.get("id")
    if raw is None or str(raw).strip() == "":
        # Derived from the whole content (prompt and both responses), never the prompt alone.
        return "sha:" + sha256("\x1f".join(parts))[:24]
    return str(raw).strip()


def canonical_pair(path, where: str, values: dict[str, Any]) -> PairRecord:
    prompt = _text(path, where, values, "prompt")
    response_a = _text(path, where, values, "response_a")
    response_b = _text(path, where, values, "response_b")
    return PairRecord(
        external_id=_external_id(path, where, values, prompt, response_a, response_b),
        prompt=prompt,
        response_a=response_a,
        response_b=response_b,
        meta=_metadata(path, where, values, set(CANONICAL)),
        where=where,
        system_a=_system(path, where, values, "system_a"),
        system_b=_system(path, where, values, "system_b"),
    )


def split_dialogues(path, where: str, chosen: str, rejected: str) -> tuple[str, str, str]:
    """HH-RLHF rows are whole dialogues sharing a prefix: the prompt is the shared dialogue up to
    the final `Assistant:` turn; the responses are the two final turns."""
    shared = 0
    for left, right in zip(chosen, rejected, strict=False):
        if left != right:
            break
        shared += 1
    cut = chosen.rfind(ASSISTANT_TURN, 0, shared + 1)
    if cut < 0:
        raise InputError(
            path,
            where,
            "chosen",
            "no shared dialogue ending in an 'Assistant:' turn; give a 'prompt' column",
        )
    prompt = chosen[:cut].strip()
    start = cut + len(ASSISTANT_TURN)
    return prompt, chosen[start:].strip(), rejected[start:].strip()


def chosen_rejected_pair(path, where: str, values: dict[str, Any], seed: int) -> PairRecord:
    chosen = _text(path, where, values, "chosen")
    rejected = _text(path, where, values, "rejected")
    prompt = _text(path, where, values, "prompt", required=False)
    if prompt.strip():
        chosen_text, rejected_text = chosen, rejected
    else:
        prompt, chosen_text, rejected_text = split_dialogues(path, where, chosen, rejected)
        if not prompt:
            raise InputError(path, where, "chosen", "the shared dialogue (the prompt) is empty")
    for column, text in (("chosen", chosen_text), ("rejected", rejected_text)):
        if not text.strip():
            raise InputError(path, where, column, "the final response is empty")
    external_id = _external_id(path, where, values, prompt, chosen_text, rejected_text)
    # A deterministic seeded coin puts the chosen response in slot A or B, so "A" is not
    # always the preferred one and the same file always gives the same slots.
    chosen_in_a = int(sha256(f"{seed}:{external_id}")[:8], 16) % 2 == 0
    a, b = (chosen_text, rejected_text) if chosen_in_a else (rejected_text, chosen_text)
    return PairRecord(
        external_id=external_id,
        prompt=prompt,
        response_a=a,
        response_b=b,
        meta=_metadata(path, where, values, {"id", "prompt", "chosen", "rejected"}),
        preferred="A" if chosen_in_a else "B",
        where=where,
    )
