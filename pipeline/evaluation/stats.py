"""The statistics behind win rates and the leaderboard, on numpy arrays: Wilson intervals,
a batched logistic fit (the length-controlled win rate), and Bradley-Terry by Newton's method.

The fits are small Newton iterations written here rather than a statsmodels/scikit-learn call
per system pair: one vectorised fit serves all 190 pairs of 20 systems (or all 200 bootstrap
resamples) at once, which is what keeps `rlaif winrate` under a second at 1 M pairs.
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054  # the 97.5 % standard normal quantile
LC_RIDGE = 1e-3  # keeps the logistic fit finite when a pair is (nearly) separable
BT_RIDGE = 1e-2  # picks the sum-zero solution and keeps a system with no wins finite


def wilson(rate: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a mean outcome in [0, 1] over n pairs (ties are 0.5, so the
    binomial variance rate(1 - rate) bounds the true one: the interval is conservative).
    Mirror-symmetric: wilson(1 - r, n) = 1 - reversed(wilson(r, n))."""
    if n <= 0:
        return None
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def factorize(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the index of each key among the distinct keys, the distinct keys in ascending order)
    for non-negative integer keys. Small key ranges (the comparisons of a win-rate stream) go
    through a lookup table, linear in the rows, instead of a sort of a million rows."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=keys.dtype)
    top = int(keys.max()) + 1
    if top > 4 * len(keys) + 4096:
        distinct, index = np.unique(keys, return_inverse=True)
        return index, distinct
    distinct = np.flatnonzero(np.bincount(keys, minlength=top))
    lookup = np.zeros(top, dtype=np.int64)
    lookup[distinct] = np.arange(len(distinct))
    return lookup[keys], distinct.astype(keys.dtype)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic function


def logistic_intercepts(
    group: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    n_groups: int,
    *,
    ridge: float = LC_RIDGE,
    max_iter: int = 50,
    tol: float = 1e-10,
) -> np.ndarray:
    """Per group g, fit P(y = 1) = sigmoid(a_g + b_g * x) by penalised maximum likelihood
    (y may be fractional: a tie is 0.5) and return the intercepts a_g (nan for empty groups).

    Newton's method on all groups at once: each step is a few bincounts over the rows."""
    a = np.zeros(n_groups)
    b = np.zeros(n_groups)
    counts = np.bincount(group, minlength=n_groups).astype(float)
    mean = np.bincount(group, weights=y, minlength=n_groups) / np.maximum(counts, 1)
    mean = np.clip(mean, 1e-3, 1 - 1e-3)
    a = np.log(mean / (1 - mean))  # start at the raw rate: few steps are needed
    for _ in range(max_iter):
        p = _sigmoid(a[group] + b[group] * x)
        w = p * (1 - p)
        r = y - p
        g_a = np.bincount(group, weights=r, minlength=n_groups) - ridge * a
        g_b = np.bincount(group, weights=r * x, minlength=n_groups) - ridge * b
        h_aa = np.bincount(group, weights=w, minlength=n_groups) + ridge
        h_ab = np.bincount(group, weights=w * x, minlength=n_groups)
        h_bb = np.bincount(group, weights=w * x * x, minlength=n_groups) + ridge
        det = h_aa * h_bb - h_ab * h_ab
        step_a = (h_bb * g_a - h_ab * g_b) / det
        step_b = (h_aa * g_b - h_ab * g_a) / det
        a += step_a
        b += step_b
        if np.max(np.abs(step_a), initial=0.0) < tol and np.max(np.abs(step_b), initial=0.0) < tol:
            break
    a[counts == 0] = np.nan
    return a


def bradley_terry(wins: np.ndarray, *, ridge: float = BT_RIDGE, max_iter: int = 100) -> np.ndarray:
    """Bradley-Terry log-strengths from win counts, batched.

    `wins[..., i, j]` is how often system i beat system j (a tie adds 0.5 to both directions).
    Maximises sum_ij W_ij log sigmoid(t_i - t_j) - ridge/2 * |t|^2 by Newton's method; the
    penalty makes the optimum unique and sum-zero (the likelihood ignores a common shift)."""
    wins = np.asarray(wins, dtype=float)
    k = wins.shape[-1]
    n = wins + np.swapaxes(wins, -1, -2)
    theta = np.zeros(wins.shape[:-1])
    eye = np.eye(k)
    for _ in range(max_iter):
        diff = theta[..., :, None] - theta[..., None, :]
        s = 1.0 / (1.0 + np.exp(-diff))
        grad = (wins - n * s).sum(axis=-1) - ridge * theta
        w = n * s * (1 - s)
        hess = w - eye * w.sum(axis=-1)[..., None] - ridge * eye  # negative definite
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        theta = theta - step
        if np.max(np.abs(step), initial=0.0) < 1e-10:
            break
    return theta - theta.mean(axis=-1, keepdims=True)
