"""Prediction-powered inference (ppi_py) for the alignment page: a confidence interval for the
pool-wide rate "A is preferred" from a small human spot-check plus the AI labels of the whole
pool, beside the human-only and the naive AI-only intervals. The one module that imports ppi_py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from pipeline.evaluation import alignment_queries as q
from pipeline.evaluation.agreement import ReferenceRow, classify


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class CountedInterval(Interval):
    n: int  # the valid AI labels the naive interval rests on


@dataclass(frozen=True, slots=True)
class PpiInterval:
    """PPI++ and the human-only interval for a mean; None with fewer than two labels."""

    n_labelled: int
    n_pool: int
    ppi: Interval | None
    human_only: Interval | None


@dataclass(frozen=True, slots=True)
class PpiEstimate:
    """The rate "A is preferred" three ways: PPI, the human spot-check alone, the AI alone."""

    n_labelled: int
    n_pool: int
    ppi: Interval | None
    human_only: Interval | None
    alpha: float
    sample: str  # which spot-check set
    naive_ai_only: CountedInterval | None


def _wald(mean: float, var: float, n: int, alpha: float) -> tuple[float, float]:
    from statistics import NormalDist

    half = NormalDist().inv_cdf(1 - alpha / 2) * math.sqrt(max(var, 0.0) / n)
    return mean - half, mean + half


def ppi_interval(
    y: Sequence[float],
    yhat: Sequence[float],
    yhat_pool: Sequence[float],
    *,
    weights: Sequence[float] | None = None,
    alpha: float = 0.05,
    with_human_only: bool = True,
) -> PpiInterval:
    """PPI++ interval (ppi_py.ppi_mean_ci) for a mean, plus (unless `with_human_only` is False) the
    human-only classical interval.

    `y`/`yhat`: human label and AI prediction on the spot-checked pairs; `yhat_pool`: the AI
    prediction on every pair of the pool; `weights`: inverse inclusion probabilities of a
    stratified sample (None for a simple random sample)."""
    n = len(y)
    if n < 2 or not len(yhat_pool):
        return PpiInterval(n_labelled=n, n_pool=len(yhat_pool), ppi=None, human_only=None)
    # Imported only when there is something to estimate: ppi_py brings numba, scikit-learn
    # and statsmodels (seconds of a CLI call before anyone has labelled a pair).
    import numpy as np
    from ppi_py import classical_mean_ci, ppi_mean_ci

    y_arr, yhat_arr = np.asarray(y, float), np.asarray(yhat, float)
    pool = np.asarray(yhat_pool, float)
    w = None if weights is None else np.asarray(weights, float)
    lower, upper = (float(v[0]) for v in ppi_mean_ci(y_arr, yhat_arr, pool, alpha=alpha, w=w))
    # Both intervals are symmetric normal intervals: the estimate is the midpoint.
    ppi = Interval(estimate=(lower + upper) / 2, lower=lower, upper=upper)
    if not with_human_only:
        return PpiInterval(n_labelled=n, n_pool=len(pool), ppi=ppi, human_only=None)
    c_lower, c_upper = (float(v) for v in np.ravel(classical_mean_ci(y_arr, w=w, alpha=alpha)))
    classical = Interval(estimate=(c_lower + c_upper) / 2, lower=c_lower, upper=c_upper)
    return PpiInterval(n_labelled=n, n_pool=len(pool), ppi=ppi, human_only=classical)


def ppi_preferred_a(
    session: Session,
    judge_version_id: int,
    pool: q.PoolScan,
    references: Sequence[ReferenceRow],
    *,
    sample_id: int | None = None,
    alpha: float = 0.05,
) -> PpiEstimate:
    """PPI interval for the pool-wide rate "A is preferred", next to the naive AI-only estimate.

    The spot-checked pairs are the stored audit sample `sample_id` (weighted by its inverse
    inclusion probabilities), or, when None, every human-referenced pair. The latter is only
    unbiased if those pairs were picked at random, which the priority queue does not do: prefer
    an audit sample."""
    import numpy as np

    valid = [g for g in pool.groups if classify(g.status, g.label) == "valid"]
    n_pool = sum(group.n for group in pool.groups)
    n_valid = sum(group.n for group in valid)
    n_a = sum(group.n for group in valid if group.label == "A")
    yhat_pool = np.zeros(n_pool)
    yhat_pool[:n_a] = 1.0
    if sample_id is None:
        cells = [
            q.SpotCheckCell(
                row.reference == "A",
                row.label == "A" and classify(row.status, row.label) == "valid",
                1.0,
                row.n,
            )
            for row in references
        ]
    else:
        cells = q.sample_cells(session, judge_version_id, sample_id)
    counts = np.array([cell.n for cell in cells], dtype=int)
    y = np.repeat([float(cell.human_a) for cell in cells], counts)
    yhat = np.repeat([float(cell.ai_a) for cell in cells], counts)
    weights = None if sample_id is None else np.repeat([cell.weight for cell in cells], counts)
    result = ppi_interval(y, yhat, yhat_pool, weights=weights, alpha=alpha)

    # Naive: take the valid AI labels as the truth (what one would report without humans).
    naive = None
    if n_valid:
        rate = n_a / n_valid
        lower, upper = _wald(rate, rate * (1 - rate), n_valid, alpha)
        naive = CountedInterval(estimate=rate, lower=lower, upper=upper, n=n_valid)
    return PpiEstimate(
        n_labelled=result.n_labelled,
        n_pool=result.n_pool,
        ppi=result.ppi,
        human_only=result.human_only,
        alpha=alpha,
        sample=f"audit sample {sample_id}" if sample_id else "all human-referenced pairs",
        naive_ai_only=naive,
    )
