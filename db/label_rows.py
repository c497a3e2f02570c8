"""The typed rows the label writers of db/labels.py take: a judge's verdict on a pair, and a
person's label from an import. Plain dataclasses: a judge backend builds them without touching
the database."""

from __future__ import annotations

from dataclasses import dataclass

from db.enums import JudgmentStatus


@dataclass(frozen=True, slots=True)
class JudgmentRow:
    """One judge's verdict on one pair, as a judge backend returns it and upsert_judgments
    stores it. A failed call has label None, status FAILED and the error."""

    pair_id: int
    label: str | None = None  # A | B | tie | invalid; None when the call failed
    p_a: float | None = None  # P(A preferred), both orders combined
    confidence: float | None = None
    p_a_ab: float | None = None  # P(A) with A shown first
    p_a_ba: float | None = None  # P(A) with A shown second
    swap_inconsistent: bool | None = None
    raw_output: str | None = None
    rationale: str | None = None
    status: JudgmentStatus | None = None  # None: invalid for the label "invalid", else ok
    error: str | None = None

    @property
    def stored_status(self) -> JudgmentStatus:
        if self.status:
            return JudgmentStatus(self.status)
        invalid = self.label == JudgmentStatus.INVALID
        return JudgmentStatus.INVALID if invalid else JudgmentStatus.OK


@dataclass(frozen=True, slots=True)
class HumanLabelRow:
    """One person's label on one pair, as an import writes it (note None keeps the stored one)."""

    pair_id: int
    annotator: str
    label: str
    note: str | None = None
