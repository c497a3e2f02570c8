"""The judge's length bias (AlpacaEval's "P(prefer longer)"), per judge version, beside the
same share for people: a judge that prefers length more than people do is the first sign of the
specification gaming the seeds warn about.

ai_prefers_longer: among pairs with a valid non-tie AI label whose two responses differ by more
than LENGTH_MARGIN characters, the share where the judge picked the longer one.
human_prefers_longer: the same over pairs with a non-tie human reference (override, else
consensus). Both come with the counts they rest on. All pairs count, with or without systems.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import and_, case, func, literal_column, or_, select
from sqlalchemy.orm import Session

from db.enums import JudgmentStatus
from db.models import Judgment, Pair
from pipeline.evaluation.agreement import (
    has_human_reference,
    human_reference,
    referenced_judgments,
)
from pipeline.evaluation.outcomes import SystemFilter, stream_pairs

LENGTH_MARGIN = 30  # characters


@dataclass(frozen=True)
class LengthBias:
    judge_version_id: int
    ai_length_pairs: int  # valid non-tie AI labels on pairs differing by > LENGTH_MARGIN
    ai_picked_longer: int
    ai_prefers_longer: float | None
    human_length_pairs: int  # the same for the human reference (the same for every judge)
    human_picked_longer: int
    human_prefers_longer: float | None

    def as_metrics(self) -> dict[str, int | float | None]:
        """The fields `rlaif metrics --json` carries for each judge version."""
        return {
            "length_margin": LENGTH_MARGIN,
            "ai_prefers_longer": self.ai_prefers_longer,
            "ai_length_pairs": self.ai_length_pairs,
            "ai_picked_longer": self.ai_picked_longer,
            "human_prefers_longer": self.human_prefers_longer,
            "human_length_pairs": self.human_length_pairs,
            "human_picked_longer": self.human_picked_longer,
        }


def _picked_longer(label, diff):
    """SQL: 1 when `label` names the longer response, with diff = len(A) - len(B)."""
    return case(
        (or_(and_(label == "A", diff > 0), and_(label == "B", diff < 0)), 1),
        else_=0,
    )


def _far():
    """SQL: the responses differ by more than LENGTH_MARGIN characters. Word for word (literal
    constants, no parameters) the predicate of the partial index ix_pairs_length_far, so that
    only those pairs are read."""
    diff = Pair.length_diff
    margin = literal_column(str(LENGTH_MARGIN))
    return or_(diff > margin, diff < literal_column(str(-LENGTH_MARGIN)))


def length_bias(session: Session, judge_ids: Sequence[int]) -> dict[int, LengthBias]:
    """Two aggregate queries: one over judgments (per judge), one over human references; the
    length difference is read from the pair (Pair.length_diff), not from the responses.
    Both are driven by partial indexes on the pairs: those whose responses differ by more
    than the margin (the judgments of each are found by its (pair, judge) key), and those
    with a human reference."""
    diff = Pair.length_diff
    reference = human_reference()
    human_n, human_longer = session.execute(
        select(func.count(), func.sum(_picked_longer(reference, diff))).where(
            has_human_reference(), _far(), reference.in_(("A", "B"))
        )
    ).one()
    ai_rows = {}
    if judge_ids:
        # One count pair per judge as columns rather than a GROUP BY, which would sort every row.
        judges = sorted(set(judge_ids))
        longer = _picked_longer(Judgment.label, diff)
        columns = []
        for judge_id in judges:
            mine = Judgment.judge_version_id == judge_id
            columns += [func.count(case((mine, 1))), func.count(case((mine & (longer == 1), 1)))]
        query = (
            select(*columns)
            .select_from(referenced_judgments())
            .where(
                _far(),
                Judgment.judge_version_id.in_(judges),
                Judgment.status == JudgmentStatus.OK,
                Judgment.label.in_(("A", "B")),
            )
        )
        row = session.execute(query).one()
        ai_rows = {j: (row[2 * k], row[2 * k + 1]) for k, j in enumerate(judges)}
    human_longer = int(human_longer or 0)
    result = {}
    for judge_id in judge_ids:
        n, longer = ai_rows.get(judge_id, (0, 0))
        result[judge_id] = LengthBias(
            judge_version_id=judge_id,
            ai_length_pairs=n,
            ai_picked_longer=int(longer),
            ai_prefers_longer=longer / n if n else None,
            human_length_pairs=human_n,
            human_picked_longer=human_longer,
            human_prefers_longer=human_longer / human_n if human_n else None,
        )
    return result


@dataclass(frozen=True)
class LengthBin:
    """Pairs of a comparison whose length difference (system minus opponent, characters)
    falls in [lower, upper): the mean AI and human outcome for the system."""

    lower: float
    upper: float
    pairs: int
    ai_outcome: float | None
    human_pairs: int
    human_outcome: float | None


def outcome_by_length(
    session: Session, judge_version_id: int, system: str, opponent: str, *, bins: int = 10
) -> list[LengthBin]:
    """The AI outcome against the length difference for one comparison, in quantile bins."""
    stream = stream_pairs(session, [judge_version_id], SystemFilter(system, opponent))
    if system not in stream.names:
        return []
    flip = stream.system_a != stream.names.index(system)
    ai = np.where(flip, 1.0 - stream.ai, stream.ai)
    human = np.where(flip, 1.0 - stream.human, stream.human)
    diff = np.where(flip, -stream.length_diff, stream.length_diff)
    valid = ~np.isnan(ai)
    if not valid.any():
        return []
    edges = np.unique(np.quantile(diff[valid], np.linspace(0, 1, bins + 1)))
    if len(edges) == 1:
        edges = np.array([edges[0], edges[0] + 1])
    which = np.clip(np.searchsorted(edges, diff, side="right") - 1, 0, len(edges) - 2)
    result = []
    for b in range(len(edges) - 1):
        in_bin = which == b
        ai_here = ai[in_bin & valid]
        human_here = human[in_bin & ~np.isnan(human)]
        if not len(ai_here) and not len(human_here):
            continue
        result.append(
            LengthBin(
                lower=float(edges[b]),
                upper=float(edges[b + 1]),
                pairs=len(ai_here),
                ai_outcome=float(ai_here.mean()) if len(ai_here) else None,
                human_pairs=len(human_here),
                human_outcome=float(human_here.mean()) if len(human_here) else None,
            )
        )
    return result
