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
it. This module imports torch only inside the classes that need it (the page imports it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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


class RolloutCapture:
    """Collects the responses (and raw reward scores) of one PPO update's rollouts.

    TRL's PPOTrainer keeps its rollouts in train()'s locals and hands callbacks only the logged
    numbers, so the samples are taken where they pass through the reward model: a forward
    pre-hook on its backbone sees [query | truncated response] for every rollout, and a hook on
    its `score` head sees the scores. The query width comes from the batch the train dataloader
    just yielded (`wrap_dataloader`)."""

    def __init__(self, reward_model, stop_id: int | None) -> None:
        self.stop_id = stop_id
        self.active = True
        self.context_length: int | None = None
        self.responses: list[list[int]] = []
        self.scores: list[float] = []
        self._mask = None
        backbone = getattr(reward_model, reward_model.base_model_prefix)
        self.handles = [
            backbone.register_forward_pre_hook(self._on_backbone, with_kwargs=True),
            reward_model.score.register_forward_hook(self._on_score),
        ]

    def _on_backbone(self, _module, _args, kwargs) -> None:
        if not self.active or self.context_length is None:
            self._mask = None
            return
        ids, mask = kwargs["input_ids"], kwargs["attention_mask"].bool()
        self._mask = mask
        ctx = self.context_length
        for row, keep in zip(ids[:, ctx:].tolist(), mask[:, ctx:].tolist(), strict=True):
            self.responses.append(strip_response(row, keep, self.stop_id))

    def _on_score(self, _module, _args, output) -> None:
        if self._mask is None:
            return
        import torch

        # get_reward reads the score at the last non-padding position
        last = self._mask.shape[1] - 1 - self._mask.flip(1).int().argmax(1)
        values = output[torch.arange(output.shape[0], device=output.device), last].squeeze(-1)
        self.scores.extend(values.float().tolist())
        self._mask = None

    def wrap_dataloader(self, dataloader):
        capture = self

        class _Recording:
            def __iter__(self):
                for batch in dataloader:
                    capture.context_length = batch["input_ids"].shape[1]
                    yield batch

            def __len__(self):
                return len(dataloader)

        return _Recording()

    def take(self) -> tuple[list[list[int]], list[float]]:
        out = (self.responses, self.scores)
        self.responses, self.scores = [], []
        return out

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class PpoMonitor:
    """Turns the captured rollouts into monitor metrics at each log, and runs the probe."""

    def __init__(self, capture: RolloutCapture, *, reward_is_model: bool, judge=None) -> None:
        self.capture = capture
        self.reward_is_model = reward_is_model
        self.judge = judge  # a pairwise judge (pipeline.label.build_judge) or None
        self.series: dict[str, list[tuple[int, float]]] = {}
        self.warned: set[str] = set()
        self.reference: dict[str, tuple[list[int], str]] = {}  # probe prompt -> (ids, text)

    def step_metrics(self, accelerator, step: int) -> dict[str, float]:
        """Monitor metrics of the update just finished (every rank calls this: it gathers)."""
        from accelerate.utils import gather_object

        responses, scores = self.capture.take()
        if accelerator.num_processes > 1:  # one list per rank
            responses = [r for part in gather_object([responses]) for r in part]
            scores = [s for part in gather_object([scores]) for s in part]
        if not responses:
            return {}
        metrics = sample_metrics(responses)
        if self.reward_is_model and scores:
            metrics[RM_SCORE] = sum(scores) / len(scores)
        self._remember(step, metrics)
        return metrics

    def _remember(self, step: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.series.setdefault(name, []).append((step, value))

    def new_warnings(self) -> list[DriftWarning]:
        fresh = [w for w in drift_warnings(self.series) if w.metric not in self.warned]
        self.warned.update(w.metric for w in fresh)
        return fresh

    def set_reference(self, answers: dict[str, tuple[list[int], str]]) -> None:
        self.reference = dict(answers)

    def start_metrics(self) -> dict[str, float]:
        """Before training the policy is the reference: its own answers, ratio 1, even odds."""
        metrics = {
            REFERENCE_LENGTH: mean_length([ids for ids, _ in self.reference.values()]),
            LENGTH_RATIO: 1.0,
        }
        if self.judge is not None and self.reward_is_model:
            metrics[JUDGE_PREFERENCE] = 0.5
        return metrics

    def probe_metrics(self, probe: Sequence[tuple[str, list[int], str]]) -> dict[str, float]:
        """Policy vs reference on the probe prompts: (prompt, policy ids, policy text) rows."""
        rows = [row for row in probe if row[0] in self.reference]
        if not rows:
            return {}
        reference = [self.reference[prompt] for prompt, _, _ in rows]
        ref_length = mean_length([ids for ids, _ in reference])
        metrics = {REFERENCE_LENGTH: ref_length}
        if ref_length > 0:
            metrics[LENGTH_RATIO] = mean_length([ids for _, ids, _ in rows]) / ref_length
        if self.judge is not None and self.reward_is_model:
            metrics[JUDGE_PREFERENCE] = judge_preference(
                self.judge,
                [prompt for prompt, _, _ in rows],
                [text for _, _, text in rows],
                [text for _, text in reference],
            )
        return metrics


def judge_preference(
    judge, prompts: Sequence[str], policy: Sequence[str], reference: Sequence[str]
) -> float:
    """Mean P(policy's answer preferred) over the probe, the policy shown as A (the judge runs
    both orders); identical answers count 0.5 without a judge call."""
    from pipeline.judges.base import PairInput

    pairs = [
        PairInput(i, p, a, b)
        for i, (p, a, b) in enumerate(zip(prompts, policy, reference, strict=True))
        if a != b
    ]
    rows = {row["pair_id"]: row for row in judge.judge(pairs)} if pairs else {}
    values = [
        float(rows[i]["p_a"]) if i in rows and rows[i].get("p_a") is not None else 0.5
        for i in range(len(prompts))
    ]
    return sum(values) / len(values) if values else 0.5


def build_probe_judge(spec: str | None, device: Any) -> Any:
    """The pinned judge for the probe: a preset name or a judge config file (None: no judge)."""
    if not spec:
        return None
    from pipeline.judges.judge_config import load_judge_config
    from pipeline.label import build_judge

    config = load_judge_config(spec)
    if config.backend != "openai" and config.device == "auto":
        config.device = str(device)
    return build_judge(config)
