"""What every judge backend shares: the pair input, the combination of the two orders, and the
judge protocol that pipeline/judging/runner.py drives. Pure functions: testable without a model."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

from db.enums import JudgmentStatus
from db.label_rows import JudgmentRow


@dataclass(frozen=True)
class PairInput:
    pair_id: int
    prompt: str
    response_a: str
    response_b: str


@dataclass(frozen=True)
class JudgeIdentity:
    """The fields of db.labels.get_or_create_judge_version that pin this judge."""

    name: str | None
    backend: str
    model_id: str
    model_revision: str | None
    template_hash: str | None
    label_tokens: dict[str, Any]
    params: dict[str, Any]
    confidence_kind: str


class Judge(Protocol):
    identity: JudgeIdentity

    def judge(self, pairs: list[PairInput]) -> list[JudgmentRow]:
        """One row per pair for db.labels.upsert_judgments (failed ones with status/error)."""
        ...


def combine_orders(
    p_a_ab: float, p_a_ba: float, tie_band: float = 0.0, *, pair_id: int
) -> JudgmentRow:
    """Debias position: p = (p_AB + 1 - p_BA) / 2.

    `p_a_ab` is P(A) with A shown first; `p_a_ba` is P(A) with A shown second, i.e. 1 - P(first
    slot) of the swapped prompt, so p is their mean. Label A if p > 0.5, else B; `tie` when
    |p - 0.5| <= tie_band (with tie_band > 0). The pair is swap-inconsistent when the two orders
    prefer different responses.
    """
    p = (p_a_ab + p_a_ba) / 2
    label = "tie" if tie_band > 0 and abs(p - 0.5) <= tie_band else "A" if p > 0.5 else "B"
    return JudgmentRow(
        pair_id=pair_id,
        label=label,
        p_a=p,
        confidence=max(p, 1 - p),
        p_a_ab=p_a_ab,
        p_a_ba=p_a_ba,
        swap_inconsistent=(p_a_ab > 0.5) != (p_a_ba > 0.5),
        status=JudgmentStatus.OK,
    )


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    z = math.exp(x)
    return z / (1 + z)


def failed_row(pair_id: int, error: str, raw_output: str | None = None) -> JudgmentRow:
    return JudgmentRow(
        pair_id=pair_id, status=JudgmentStatus.FAILED, error=error[:2000], raw_output=raw_output
    )


def parse_label(text: str, labels: dict[str, str]) -> str | None:
    """The slot ("A"/"B") of the first label written as a word in `text`, else None."""
    pattern = "|".join(re.escape(v) for v in sorted(labels.values(), key=len, reverse=True))
    match = re.search(rf"(?<![\w])({pattern})(?![\w])", text)
    if not match:
        return None
    return next(slot for slot, value in labels.items() if value == match.group(1))
