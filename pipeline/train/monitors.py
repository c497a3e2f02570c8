"""Reward-hacking and collapse monitors for PPO: what the policy's samples look like, step by step.

Every logged PPO update adds, from that update's rollouts (all ranks gathered):
    monitor/length            mean response length in tokens (the stop token not counted)
    monitor/distinct_1, _2    distinct unigrams / bigrams over all tokens of the batch's responses
    monitor/duplicate_share   share of responses that repeat an earlier response of the batch
    monitor/reward_model_score  the reward model's raw score (before the missing-EOS penalty)
At each sample-completion point, on the fixed held-out probe prompts (greedy decoding):
    monitor/length_ratio      policy's mean response length / the reference policy's
    monitor/judge_preference  P(judge prefers the policy's answer over the reference's), both
                              orders; 0.5 = no better. A rising reward with a flat or falling
                              preference is the divergence that reward hacking shows.

`drift_warnings` says when length grew by more than 50 % or distinct-2 fell by more than 50 %
from the first logged update; the trainer prints it into the job log and the Training page shows
it. This module is pure (the page imports it); ppo_monitor.py takes the samples from the trainer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PREFIX = "monitor/"
LENGTH = PREFIX + "length"
DISTINCT_1 = PREFIX + "distinct_1"
DISTINCT_2 = PREFIX + "distinct_2"
DUPLICATES = PREFIX + "duplicate_share"
RM_SCORE = PREFIX + "reward_model_score"
LENGTH_RATIO = PREFIX + "length_ratio"
REFERENCE_LENGTH = PREFIX + "reference_length"
JUDGE_PREFERENCE = PREFIX + "judge_preference"

LENGTH_GROWTH = 0.5  # warn when length > (1 + this) x its first value
DISTINCT_FALL = 0.5  # warn when distinct-2 < (1 - this) x its first value


def distinct_n(samples: Sequence[Sequence[int]], n: int) -> float:
    """Distinct n-grams over all n-grams of the samples (n-grams do not cross samples); 0.0 when
    no sample has n tokens."""
    grams = [tuple(s[i : i + n]) for s in samples for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def duplicate_share(samples: Sequence[Sequence[int]]) -> float:
    """Share of samples identical to an earlier one: (n - distinct samples) / n."""
    if not samples:
        return 0.0
    return (len(samples) - len({tuple(s) for s in samples})) / len(samples)


def mean_length(samples: Sequence[Sequence[int]]) -> float:
    return sum(len(s) for s in samples) / len(samples) if samples else 0.0


def sample_metrics(samples: Sequence[Sequence[int]]) -> dict[str, float]:
    return {
        LENGTH: mean_length(samples),
        DISTINCT_1: distinct_n(samples, 1),
        DISTINCT_2: distinct_n(samples, 2),
        DUPLICATES: duplicate_share(samples),
    }


def strip_response(ids: Iterable[int], mask: Iterable[bool], stop_id: int | None) -> list[int]:
    """A response's tokens: padding dropped, cut at (and without) the stop token."""
    out = []
    for token, keep in zip(ids, mask, strict=True):
        if not keep:
            continue
        if stop_id is not None and token == stop_id:
            break
        out.append(int(token))
    return out


@dataclass(frozen=True)
class DriftWarning:
    metric: str
    start: float
    now: float
    step: int

    @property
    def text(self) -> str:
        if self.metric == LENGTH:
            change = f"grew {self.now / self.start - 1:+.0%}"
            what = "response length"
            hint = "the policy may be pleasing the reward with longer answers"
        else:
            change = f"fell {1 - self.now / self.start:.0%}"
            what = "distinct-2"
            hint = "the policy may be collapsing onto a few answers"
        return (
            f"{what} {change} from the start ({self.start:.3g} -> {self.now:.3g} at step "
            f"{self.step}): {hint}"
        )


def drift_warnings(series: dict[str, Sequence[tuple[int, float]]]) -> list[DriftWarning]:
    """The first update at which length or distinct-2 crossed its threshold, per metric.

    `series` maps a metric name to its (step, value) points in step order."""
    out = []
    for metric, crossed in (
        (LENGTH, lambda start, now: now > (1 + LENGTH_GROWTH) * start),
        (DISTINCT_2, lambda start, now: now < (1 - DISTINCT_FALL) * start),
    ):
        points = list(series.get(metric, ()))
        if not points or points[0][1] <= 0:
            continue
        start = points[0][1]
        hit = next(((s, v) for s, v in points[1:] if crossed(start, v)), None)
        if hit is not None:
            out.append(DriftWarning(metric, start, hit[1], hit[0]))
    return out


def divergence_warning(series: dict[str, Sequence[tuple[int, float]]]) -> str | None:
    """The reward model's score rose while the judge does not prefer the policy to the reference
    at the last probe: the policy may be gaming the reward model."""
    score, preference = series.get(RM_SCORE, ()), series.get(JUDGE_PREFERENCE, ())
    if len(score) < 2 or len(preference) < 2:
        return None
    rose = score[-1][1] > score[0][1]
    if rose and preference[-1][1] <= preference[0][1]:
        return (
            f"the reward model's score rose ({score[0][1]:.3g} -> {score[-1][1]:.3g}) while the "
            f"judge's preference for the policy over the reference did not "
            f"({preference[0][1]:.2f} -> {preference[-1][1]:.2f}): possible reward hacking"
        )
    return None


def series_from_rows(rows: Iterable[tuple[int, str, float]]) -> dict[str, list[tuple[int, float]]]:
    """(step, name, value) metric rows -> {name: [(step, value), ...]} for the monitor metrics."""
    out: dict[str, list[tuple[int, float]]] = {}
    for step, name, value in rows:
        if name.startswith(PREFIX):
            out.setdefault(name, []).append((int(step), float(value)))
    return out
