"""Win rates per judge version and ordered system pair: by the judge, by people, corrected by
prediction-powered inference (PPI), and length-controlled.

For systems X and Y, over the pairs between them (either slot), the outcome for X is 1 (X
preferred), 0.5 (tie) or 0 (Y preferred); the win rate is the mean outcome, (W + T/2) / n, as
AlpacaEval and MT-Bench define it. Exact by construction: win_rate(X, Y) = 1 - win_rate(Y, X)
(both orientations come from the same counts and fits), a pair of identical responses is a tie,
and X against itself is 0.5 (every pair between X and X is a tie between systems).

- ai_*: the judge's labels; invalid and failed ones are left out and counted (`ai_invalid`).
  The interval is Wilson's (conservative with ties).
- human_*: pairs with a human reference (override, else strict-majority consensus), whoever
  judged them; same interval.
- ppi_*: PPI++ (ppi_py, through pipeline/evaluation/ppi.py) from the human outcomes on the
  human-referenced pairs this judge judged, plus the judge's probability P(X preferred) on every
  pair it judged (0.5 where its label is invalid or failed). Valid when the human-referenced
  pairs are a random draw of the comparison, which a spot-check sample provides.
- lc_*: AlpacaEval-style length control: a logistic model of the AI outcome on
  tanh(length difference / its standard deviation), lengths in characters; the LC win rate is
  its prediction at zero length difference. `lc_gap` = raw - LC; above 10 points (either way)
  the row carries a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from pipeline.evaluation import stats
from pipeline.evaluation.agreement import resolve_judges
from pipeline.evaluation.outcomes import (
    PairStream,
    SystemFilter,
    human_cells,
    stream_pairs,
)

LC_WARNING_GAP = 0.10

Interval = tuple[float, float]


@dataclass
class Counts:
    """Outcome counts for the first system of a comparison."""

    wins: int = 0
    ties: int = 0
    losses: int = 0
    invalid: int = 0

    @property
    def n(self) -> int:
        return self.wins + self.ties + self.losses

    def add(self, outcome: float | None, n: int) -> None:
        if outcome is None:
            self.invalid += n
        elif outcome == 1.0:
            self.wins += n
        elif outcome == 0.0:
            self.losses += n
        else:
            self.ties += n

    def mirrored(self) -> Counts:
        return Counts(self.losses, self.ties, self.wins, self.invalid)

    def rate(self) -> float | None:
        return (self.wins + self.ties / 2) / self.n if self.n else None


@dataclass(frozen=True)
class Fits:
    """Per comparison (first system's view): LC win rate and the PPI estimate."""

    lc_win_rate: float | None = None
    ppi_win_rate: float | None = None
    ppi_interval: Interval | None = None
    ppi_labelled: int = 0

    def mirrored(self) -> Fits:
        ppi = self.ppi_interval
        return Fits(
            None if self.lc_win_rate is None else 1.0 - self.lc_win_rate,
            None if self.ppi_win_rate is None else 1.0 - self.ppi_win_rate,
            None if ppi is None else (1.0 - ppi[1], 1.0 - ppi[0]),
            self.ppi_labelled,
        )


@dataclass(frozen=True)
class WinRateRow:
    judge: str
    system: str
    opponent: str
    pairs: int  # pairs between them with a valid AI label = ai_wins + ai_losses + ai_ties
    ai_wins: int
    ai_losses: int
    ai_ties: int
    ai_invalid: int  # invalid or failed judgments, left out
    ai_win_rate: float | None
    ai_interval: Interval | None
    human_pairs: int
    human_wins: int
    human_losses: int
    human_ties: int
    human_win_rate: float | None
    human_interval: Interval | None
    ppi_win_rate: float | None
    ppi_interval: Interval | None
    ppi_labelled: int  # human-referenced pairs the PPI rests on
    lc_win_rate: float | None
    lc_gap: float | None  # ai_win_rate - lc_win_rate
    warning: str | None


def _row(judge: str, system: str, opponent: str, ai: Counts, human: Counts, fits: Fits):
    rate, human_rate = ai.rate(), human.rate()
    gap = None if rate is None or fits.lc_win_rate is None else rate - fits.lc_win_rate
    warning = None
    if gap is not None and abs(gap) > LC_WARNING_GAP:
        warning = (
            f"raw and length-controlled win rates differ by {abs(gap) * 100:.0f} points: "
            "the judge's verdict here leans on response length"
        )
    return WinRateRow(
        judge=judge,
        system=system,
        opponent=opponent,
        pairs=ai.n,
        ai_wins=ai.wins,
        ai_losses=ai.losses,
        ai_ties=ai.ties,
        ai_invalid=ai.invalid,
        ai_win_rate=rate,
        ai_interval=None if rate is None else stats.wilson(rate, ai.n),
        human_pairs=human.n,
        human_wins=human.wins,
        human_losses=human.losses,
        human_ties=human.ties,
        human_win_rate=human_rate,
        human_interval=None if human_rate is None else stats.wilson(human_rate, human.n),
        ppi_win_rate=fits.ppi_win_rate,
        ppi_interval=fits.ppi_interval,
        ppi_labelled=fits.ppi_labelled,
        lc_win_rate=fits.lc_win_rate,
        lc_gap=gap,
        warning=warning,
    )


def _orient(system_a: str, system_b: str, outcome: float | None):
    """(first, second, outcome for first) with first <= second."""
    if system_a <= system_b or outcome is None:
        return min(system_a, system_b), max(system_a, system_b), outcome
    return system_b, system_a, 1.0 - outcome


Key = tuple[int, str, str]  # judge version id, first system, second system (first <= second)


def fit_comparisons(stream: PairStream) -> dict[Key, Fits]:
    """Length-controlled and PPI win rates of every comparison, from one pass over the rows."""
    if not len(stream.ai):
        return {}
    names, code_a, code_b = stream.names, stream.system_a, stream.system_b
    flip = code_a > code_b  # orient every row to the first system in name order
    first, second = np.minimum(code_a, code_b), np.maximum(code_a, code_b)
    k = len(names)
    key = (stream.judge_version_id * k + first) * k + second
    group, group_keys = stats.factorize(key)
    n_groups = len(group_keys)
    ai = np.where(flip, 1.0 - stream.ai, stream.ai)
    soft = np.where(flip, 1.0 - stream.soft, stream.soft)
    human = np.where(flip, 1.0 - stream.human, stream.human)
    diff = np.where(flip, -stream.length_diff, stream.length_diff)

    # LC in a second thread (its array work releases the GIL) while this one runs PPI.
    with ThreadPoolExecutor(max_workers=1) as pool:
        lc_future = pool.submit(_lc_win_rates, group, n_groups, ai, diff)
        ppi = _ppi_intervals(group, n_groups, human, soft)
        lc = lc_future.result()
    fits: dict[Key, Fits] = {}
    for index, packed in enumerate(group_keys):
        judge_id, rest = divmod(int(packed), k * k)
        key_ = (judge_id, str(names[rest // k]), str(names[rest % k]))
        estimate, labelled = ppi[index]
        interval = (
            None if estimate is None else (max(0.0, estimate.lower), min(1.0, estimate.upper))
        )
        fits[key_] = Fits(
            lc_win_rate=None if np.isnan(lc[index]) else float(lc[index]),
            ppi_win_rate=None if estimate is None else estimate.estimate,
            ppi_interval=interval,
            ppi_labelled=labelled,
        )
    return fits


def _lc_win_rates(group: np.ndarray, n_groups: int, ai: np.ndarray, diff: np.ndarray):
    """Per group, the logistic fit of the AI outcome on tanh(length difference / its standard
    deviation), predicted at zero difference (nan for a group with no valid outcome)."""
    valid = ~np.isnan(ai)
    g, y, d = group[valid], ai[valid], diff[valid]
    n = np.bincount(g, minlength=n_groups).astype(float)
    mean = np.bincount(g, weights=d, minlength=n_groups) / np.maximum(n, 1)
    var = np.bincount(g, weights=d * d, minlength=n_groups) / np.maximum(n, 1) - mean**2
    sd = np.sqrt(np.maximum(var, 0.0))
    scale = np.where(sd > 0, sd, 1.0)[g]
    intercepts = stats.logistic_intercepts(g, y, np.tanh(d / scale), n_groups)
    return 1.0 / (1.0 + np.exp(-intercepts))


def _ppi_intervals(group: np.ndarray, n_groups: int, human: np.ndarray, soft: np.ndarray):
    """Per group, (the PPI interval or None, labelled pairs): the human outcomes where
    referenced, the judge's soft outcome on every pair."""
    from pipeline.evaluation.ppi import ppi_interval

    order = np.argsort(group.astype(np.int16 if n_groups < 2**15 else np.int64), kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=n_groups))])
    result = []
    for index in range(n_groups):
        rows = order[bounds[index] : bounds[index + 1]]
        labelled = rows[~np.isnan(human[rows])]
        interval = ppi_interval(human[labelled], soft[labelled], soft[rows], with_human_only=False)
        estimate = interval.ppi
        result.append((estimate, len(labelled)))
    return result


def compute_win_rates(
    session: Session,
    judge_names: Sequence[str] | None = None,
    *,
    system: str | None = None,
    opponent: str | None = None,
    source: str | None = None,
) -> list[WinRateRow]:
    """One row per (judge version, system, opponent) with pairs between them, both orders;
    with `system` (and `opponent`) only that system's side of its comparisons; with `source`
    only the pairs of that source tag."""
    judges = resolve_judges(session, judge_names)
    where = SystemFilter(system, opponent, source)
    ids = [judge.id for judge in judges]
    stream = stream_pairs(session, ids, where, self_pairs=True)
    ai, human = comparison_counts(session, ids, where, stream=stream)
    fits = fit_comparisons(stream.between_systems())

    rows = []
    for judge in judges:
        for (judge_id, first, second), counts in ai.items():
            if judge_id != judge.id:
                continue
            people = human.get((first, second), Counts())
            fit = fits.get((judge_id, first, second), Fits())
            if first == second:  # by construction, not by a fit
                fit = Fits(0.5, 0.5 if people.n else None, None, people.n)
            rows.append(_row(judge.name, first, second, counts, people, fit))
            if first != second:
                rows.append(
                    _row(
                        judge.name,
                        second,
                        first,
                        counts.mirrored(),
                        people.mirrored(),
                        fit.mirrored(),
                    )
                )
    judge_order = {judge.name: index for index, judge in enumerate(judges)}
    rows.sort(key=lambda r: (judge_order[r.judge], r.system, r.opponent))
    return [
        r
        for r in rows
        if (system is None or r.system == system) and (opponent is None or r.opponent == opponent)
    ]


def comparison_counts(
    session: Session,
    judge_ids: Sequence[int],
    where: SystemFilter = SystemFilter(),
    *,
    stream: PairStream | None = None,
) -> tuple[dict[Key, Counts], dict[tuple[str, str], Counts]]:
    """AI counts per (judge, first, second) and human counts per (first, second), from the
    first system's view (first <= second by name): the AI counts from the pair stream (read
    here unless given; it must include self-comparisons), the human ones from one GROUP BY."""
    if stream is None:
        stream = stream_pairs(session, judge_ids, where, self_pairs=True, counts_only=True)
    ai = ai_counts(stream)
    human: dict[tuple[str, str], Counts] = {}
    for cell in human_cells(session, where):
        first, second, outcome = _orient(cell.system_a, cell.system_b, cell.outcome_a)
        human.setdefault((first, second), Counts()).add(0.5 if first == second else outcome, cell.n)
    return ai, human


def ai_counts(stream: PairStream) -> dict[Key, Counts]:
    """Counts per (judge, first, second) of the stream's rows, by outcome for the first system
    (a system against itself: every valid outcome is a tie). One bincount over the rows."""
    if not len(stream.ai):
        return {}
    k = len(stream.names)
    first = np.minimum(stream.system_a, stream.system_b)
    second = np.maximum(stream.system_a, stream.system_b)
    outcome = np.where(stream.system_a > stream.system_b, 1.0 - stream.ai, stream.ai)
    outcome = np.where(first == second, 0.5, outcome)  # nan (no outcome) stays nan
    code = np.where(np.isnan(outcome), 3, np.nan_to_num(outcome) * 2).astype(np.int64)
    judge, judge_ids = stats.factorize(stream.judge_version_id)
    cell = ((judge * k + first) * k + second) * 4 + code
    n = np.bincount(cell, minlength=len(judge_ids) * k * k * 4)  # linear, no sort
    result: dict[Key, Counts] = {}
    for packed in np.flatnonzero(n).tolist():
        rest, code = divmod(packed, 4)
        index, rest = divmod(rest, k * k)
        key = (int(judge_ids[index]), stream.names[rest // k], stream.names[rest % k])
        result.setdefault(key, Counts()).add(None if code == 3 else code / 2, int(n[packed]))
    return result
