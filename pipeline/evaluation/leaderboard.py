"""The leaderboard: Bradley-Terry strengths of every system, from the judge's labels and from
the human reference, with bootstrap intervals, win rates against the field, and where the two
rankings part (Kendall's tau, and adjacent systems the judge and people order differently).

Strengths are log-strengths t (P(X beats Y) = sigmoid(t_X - t_Y)), centred on 0; a tie counts
half a win each way; self-comparisons carry no information and are left out. The bootstrap
resamples pairs: pairs with the same two systems and the same outcome are interchangeable, so a
resample of N pairs is a multinomial draw of N over the (comparison, outcome) cells, exactly
the distribution of drawing N pairs with replacement, at the cost of a few hundred cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from pipeline.evaluation import stats
from pipeline.evaluation.agreement import resolve_judges
from pipeline.evaluation.win_rates import Counts, Interval, comparison_counts

RESAMPLES = 200
SEED = 0


@dataclass(frozen=True)
class LeaderboardEntry:
    system: str
    ai_strength: float | None
    ai_interval: Interval | None
    ai_rank: int | None  # 1 = best
    ai_win_rate_vs_field: float | None  # mean outcome over all its pairs with other systems
    ai_pairs: int
    human_strength: float | None  # None: no human-referenced pair with another system
    human_interval: Interval | None
    human_rank: int | None
    human_win_rate_vs_field: float | None
    human_pairs: int


@dataclass(frozen=True)
class AdjacentDisagreement:
    higher_by_ai: str  # the judge ranks this system just above the other
    lower_by_ai: str  # people rank this one above


@dataclass(frozen=True)
class Leaderboard:
    judge: str
    kendall_tau: float | None  # AI vs human strengths, over systems with both
    resamples: int
    seed: int
    adjacent_disagreements: list[AdjacentDisagreement]
    systems: list[LeaderboardEntry]  # best first by AI strength


@dataclass(frozen=True)
class Strengths:
    strength: dict[str, float]
    interval: dict[str, Interval]
    field: dict[str, float]
    pairs: dict[str, int]

    def rank(self) -> dict[str, int]:
        ordered = sorted(self.strength, key=lambda s: (-self.strength[s], s))
        return {system: index + 1 for index, system in enumerate(ordered)}


def fit_strengths(
    counts: dict[tuple[str, str], Counts], *, resamples: int = RESAMPLES, seed: int = SEED
) -> Strengths:
    """Bradley-Terry fit and seeded bootstrap over the pairs behind `counts`."""
    counts = {key: c for key, c in counts.items() if key[0] != key[1] and c.n}
    systems = sorted({name for key in counts for name in key})
    if not systems:
        return Strengths({}, {}, {}, {})
    index = {name: i for i, name in enumerate(systems)}
    first = np.array([index[a] for a, _ in counts])
    second = np.array([index[b] for _, b in counts])
    cells = np.array([[c.wins, c.ties, c.losses] for c in counts.values()], dtype=float)

    def win_matrix(cell_counts: np.ndarray) -> np.ndarray:  # (..., comparisons, 3) -> (..., k, k)
        wins = np.zeros((*cell_counts.shape[:-2], len(systems), len(systems)))
        half_ties = cell_counts[..., 1] / 2
        wins[..., first, second] = cell_counts[..., 0] + half_ties
        wins[..., second, first] = cell_counts[..., 2] + half_ties
        return wins

    theta = stats.bradley_terry(win_matrix(cells))
    total = int(cells.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, cells.ravel() / total, size=resamples)
    boot = stats.bradley_terry(win_matrix(draws.reshape(resamples, *cells.shape)))
    lower, upper = np.percentile(boot, [2.5, 97.5], axis=0)

    wins = win_matrix(cells)
    played = wins + wins.T
    return Strengths(
        strength={s: float(theta[i]) for s, i in index.items()},
        interval={s: (float(lower[i]), float(upper[i])) for s, i in index.items()},
        field={s: float(wins[i].sum() / played[i].sum()) for s, i in index.items()},
        pairs={s: int(played[i].sum()) for s, i in index.items()},
    )


def rank_agreement(
    ai: dict[str, float], human: dict[str, float]
) -> tuple[float | None, list[AdjacentDisagreement]]:
    """Kendall's tau between the two rankings (systems in both), and each pair of systems
    adjacent in the AI ranking that people order the other way."""
    from scipy.stats import kendalltau

    both = sorted((s for s in ai if s in human), key=lambda s: (-ai[s], s))
    tau = None
    if len(both) >= 2:
        value = kendalltau([ai[s] for s in both], [human[s] for s in both]).statistic
        tau = None if np.isnan(value) else float(value)
    disagreements = [
        AdjacentDisagreement(higher, lower)
        for higher, lower in zip(both, both[1:], strict=False)
        if human[lower] > human[higher]
    ]
    return tau, disagreements


def compute_leaderboard(
    session: Session,
    judge_names: Sequence[str] | None = None,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> list[Leaderboard]:
    """One leaderboard per judge version (oldest first)."""
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    judges = resolve_judges(session, judge_names)
    ai_counts, human_counts = comparison_counts(session, [judge.id for judge in judges])
    human = fit_strengths(human_counts, resamples=resamples, seed=seed)
    human_rank = human.rank()
    boards = []
    for judge in judges:
        mine = {(a, b): c for (j, a, b), c in ai_counts.items() if j == judge.id}
        ai = fit_strengths(mine, resamples=resamples, seed=seed)
        ai_rank = ai.rank()
        systems = sorted(
            set(ai.strength) | set(human.strength),
            key=lambda s: (s not in ai_rank, ai_rank.get(s, 0), s),
        )
        tau, disagreements = rank_agreement(ai.strength, human.strength)
        entries = [
            LeaderboardEntry(
                system=s,
                ai_strength=ai.strength.get(s),
                ai_interval=ai.interval.get(s),
                ai_rank=ai_rank.get(s),
                ai_win_rate_vs_field=ai.field.get(s),
                ai_pairs=ai.pairs.get(s, 0),
                human_strength=human.strength.get(s),
                human_interval=human.interval.get(s),
                human_rank=human_rank.get(s),
                human_win_rate_vs_field=human.field.get(s),
                human_pairs=human.pairs.get(s, 0),
            )
            for s in systems
        ]
        boards.append(Leaderboard(judge.name, tau, resamples, seed, disagreements, entries))
    return boards
