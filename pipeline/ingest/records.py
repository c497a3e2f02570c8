"""Turn raw file records into validated pairs: canonical columns, or chosen/rejected data."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pipeline.errors import InputError
from pipeline.ingest.values import (
    EXTERNAL_ID_MAX,
    SYSTEM_MAX,
    cell_text,
    check_length,
    describe,
    find_bad_char,
    metadata,
)


@dataclass(frozen=True)
class TextColumn:
    """A text column of a pair file. Adding one (e.g. an optional `system_a`): an entry in
    PAIR_TEXT_COLUMNS and a PairRecord field of the same name."""

    name: str
    required: bool = True  # the file must have the column (a cell may still be empty)
    may_be_empty: bool = True  # empty responses are real data: they are kept and counted


PAIR_TEXT_COLUMNS = (
    TextColumn("prompt", may_be_empty=False),
    TextColumn("response_a"),
    TextColumn("response_b"),
)
# Which system wrote each response (optional): names for win rates, at most SYSTEM_MAX chars.
SYSTEM_COLUMNS = ("system_a", "system_b")
CANONICAL = ("id", *(column.name for column in PAIR_TEXT_COLUMNS), "metadata", *SYSTEM_COLUMNS)
_CANONICAL = frozenset(CANONICAL)
_NEVER_EMPTY = tuple(column.name for column in PAIR_TEXT_COLUMNS if not column.may_be_empty)
_CHOSEN_REJECTED = frozenset(("id", "prompt", "chosen", "rejected", "metadata"))
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
    json_text_values: int = 0  # numbers/booleans in text columns, stored as their JSON text

    system_a: str | None = None  # which system wrote each response, when the file says
    system_b: str | None = None

    @cached_property
    def content_hash(self) -> str:
        # A new optional column must join the payload only when set, or every stored hash
        # (and so every re-import) changes.
        payload: list[Any] = [self.prompt, self.response_a, self.response_b, self.meta]
        if self.system_a is not None or self.system_b is not None:
            payload.append([self.system_a, self.system_b])
        return sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str))

    @property
    def has_empty_response(self) -> bool:
        return not self.response_a.strip() or not self.response_b.strip()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_MISSING = object()


class _Cells:
    """Reads the text columns of one record, counting numbers/booleans kept as JSON text."""

    def __init__(self, path, where: str, values: dict[str, Any]):
        self.path, self.where, self.values = path, where, values
        self.converted = 0

    def text(self, column: str, required: bool = True) -> str:
        value = self.values.get(column, _MISSING)
        if type(value) is str and find_bad_char(value) is None:  # the common case
            return value
        if value is _MISSING:
            if required:
                raise InputError(self.path, self.where, column, "missing required column")
            return ""
        if isinstance(value, list):  # TRL conversational format: a list of {role, content}
            value = self._conversation(column, value)
        text, converted = cell_text(self.path, self.where, column, value)
        self.converted += converted
        return "" if text is None else text

    def _conversation(self, column: str, messages: list[Any]) -> str:
        for message in messages:
            if not (
                isinstance(message, dict)
                and isinstance(message.get("role"), str)
                and isinstance(message.get("content"), str)
            ):
                raise InputError(
                    self.path,
                    self.where,
                    column,
                    f"is a JSON array with {describe(message)} in it, not text or a "
                    "conversation (a list of {role, content} messages)",
                )
        return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)


def _not_blank(path, where: str, texts: dict[str, str]) -> None:
    if not "".join(texts.values()).strip():
        raise InputError(path, where, None, f"{', '.join(texts)} are all empty (a blank row?)")


def _system(path, where: str, values: dict[str, Any], column: str) -> str | None:
    """An optional system name: text of at most SYSTEM_MAX characters; blank is none."""
    text, _ = cell_text(path, where, column, values.get(column))
    text = (text or "").strip()
    check_length(path, where, column, text, SYSTEM_MAX)
    return text or None


def _metadata(path, where: str, values: dict[str, Any], skip: frozenset[str]) -> dict[str, Any]:
    meta = values.get("metadata")
    if meta is None or (isinstance(meta, float) and meta != meta):  # None or NaN
        meta = {}
    elif isinstance(meta, str):
        try:
            meta = json.loads(meta) if meta.strip() else {}
        except (ValueError, RecursionError):
            raise InputError(path, where, "metadata", "is not valid JSON") from None
    if not isinstance(meta, dict):
        raise InputError(path, where, "metadata", "must be an object")
    # Other columns are kept as metadata, so nothing in the file is silently dropped.
    extra = {}
    if not values.keys() <= skip:
        extra = {
            key: value
            for key, value in values.items()
            if key not in skip and value is not None and value == value  # not None or NaN
        }
    return metadata(path, where, extra, meta)


def _external_id(path, where: str, values: dict[str, Any], *parts: str) -> str:
    raw = values.get("id")
    if type(raw) is not str or find_bad_char(raw) is not None:
        raw, _ = cell_text(path, where, "id", raw)
    if raw is None or raw.strip() == "":
        # Derived from the whole content (prompt and both responses), never the prompt alone.
        return "sha:" + sha256("\x1f".join(parts))[:24]
    raw = raw.strip()
    check_length(path, where, "id", raw, EXTERNAL_ID_MAX)
    return raw


def canonical_pair(path, where: str, values: dict[str, Any]) -> PairRecord:
    texts, converted = _pair_texts(path, where, values)
    _not_blank(path, where, texts)
    for name in _NEVER_EMPTY:
        if not texts[name].strip():
            raise InputError(path, where, name, "is empty")
    prompt, response_a, response_b = texts["prompt"], texts["response_a"], texts["response_b"]
    return PairRecord(
        # The derived id hashes these three only, so that ids stay stable as columns are added.
        external_id=_external_id(path, where, values, prompt, response_a, response_b),
        **texts,
        meta=_metadata(path, where, values, _CANONICAL),
        where=where,
        json_text_values=converted,
        system_a=_system(path, where, values, "system_a"),
        system_b=_system(path, where, values, "system_b"),
    )


def _pair_texts(path, where: str, values: dict[str, Any]) -> tuple[dict[str, str], int]:
    """The text columns, and how many were numbers/booleans kept as JSON text."""
    texts = {}
    for column in PAIR_TEXT_COLUMNS:  # the usual case first: clean strings
        value = values.get(column.name)
        if type(value) is not str or find_bad_char(value) is not None:
            break
        texts[column.name] = value
    else:
        return texts, 0
    cells = _Cells(path, where, values)
    texts = {column.name: cells.text(column.name, column.required) for column in PAIR_TEXT_COLUMNS}
    return texts, cells.converted


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
    cells = _Cells(path, where, values)
    chosen = cells.text("chosen")
    rejected = cells.text("rejected")
    prompt = cells.text("prompt", required=False)
    _not_blank(path, where, {"prompt": prompt, "chosen": chosen, "rejected": rejected})
    if prompt.strip():
        chosen_text, rejected_text = chosen, rejected
    else:
        prompt, chosen_text, rejected_text = split_dialogues(path, where, chosen, rejected)
        if not prompt:
            raise InputError(path, where, "chosen", "the shared dialogue (the prompt) is empty")
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
        meta=_metadata(path, where, values, _CHOSEN_REJECTED),
        preferred="A" if chosen_in_a else "B",
        where=where,
        json_text_values=cells.converted,
    )
