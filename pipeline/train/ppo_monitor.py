"""The trainer side of the PPO monitors (monitors.py): where the samples come from, and the probe.

TRL's PPOTrainer keeps its rollouts in train()'s locals; callbacks get only the logged numbers
(on_log) and no tensors, and no method hands out the samples. But every rollout passes through
the reward model: `RolloutCapture` hooks its backbone (forward pre-hook: [query | truncated
response] ids and mask) and its `score` head (the scores), and learns the query width from the
batch the train dataloader yields. `MonitoredTrainer` (mixed into RlaifPPOTrainer) turns them
into metrics in `log()`, once per update, gathered over the ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from pipeline.train.monitors import (
    JUDGE_PREFERENCE,
    LENGTH_RATIO,
    REFERENCE_LENGTH,
    RM_SCORE,
    DriftWarning,
    drift_warnings,
    mean_length,
    sample_metrics,
    strip_response,
)


class RolloutCapture:
    """Collects the responses (and raw reward scores) of one PPO update's rollouts."""

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
        self.judge = judge  # a pairwise judge (pipeline.judging.runner.build_judge) or None
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
    from pipeline.judging.base import PairInput

    pairs = [
        PairInput(i, p, a, b)
        for i, (p, a, b) in enumerate(zip(prompts, policy, reference, strict=True))
        if a != b
    ]
    rows = {row.pair_id: row for row in judge.judge(pairs)} if pairs else {}
    values = [
        float(rows[i].p_a) if i in rows and rows[i].p_a is not None else 0.5
        for i in range(len(prompts))
    ]
    return sum(values) / len(values) if values else 0.5


def build_probe_judge(spec: str | None, device: Any) -> Any:
    """The pinned judge for the probe: a preset name or a judge config file (None: no judge)."""
    if not spec:
        return None
    from pipeline.judging.config import load_judge_config
    from pipeline.judging.runner import build_judge

    config = load_judge_config(spec)
    if config.backend != "openai" and config.device == "auto":
        config.device = str(device)
    return build_judge(config)


class MonitoredTrainer:
    """Mixed into a PPOTrainer subclass: the monitors in its logs (see the module docstring).
    The subclass's generate_completions calls `_log_probe` with its greedy probe answers."""

    monitor: PpoMonitor | None = None

    def add_monitor(self, *, reward_is_model: bool, judge=None) -> None:
        capture = RolloutCapture(self.reward_model, self.stop_token_id)
        self.monitor = PpoMonitor(capture, reward_is_model=reward_is_model, judge=judge)

    def train(self):
        if self.monitor is None:
            return super().train()
        self._reference_answers()
        plain = self.dataloader
        self.dataloader = self.monitor.capture.wrap_dataloader(plain)
        try:
            return super().train()
        finally:
            self.dataloader = plain

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.monitor is not None and "objective/kl" in logs:  # one PPO update's log
            logs.update(self.monitor.step_metrics(self.accelerator, self.state.global_step))
            for warning in self.monitor.new_warnings():
                self.accelerator.print(f"WARNING: {warning.text}", flush=True)
        super().log(logs, start_time)

    def probe_rows(self, queries, response, answers) -> list[tuple[str, list[int], str]]:
        """(prompt, response ids, response text) of one batch of greedy probe answers."""
        pad_id = self.processing_class.pad_token_id
        ids = [
            strip_response(r, [t != pad_id for t in r], self.stop_token_id)
            for r in response.tolist()
        ]
        return list(zip(queries, ids, answers, strict=True))

    @torch.no_grad()
    def _reference_answers(self) -> None:
        """The frozen reference's greedy answers to the probe prompts, once, before training.
        The policy starts as the reference, so step 0 logs ratio 1 and preference 0.5."""
        from accelerate.utils import gather_object
        from transformers import GenerationConfig

        if self.eval_dataset is None:
            return
        pad_id, stop = self.processing_class.pad_token_id, self.stop_token_id
        config = GenerationConfig(
            max_new_tokens=self.args.response_length,
            do_sample=False,
            eos_token_id=stop,
            pad_token_id=pad_id,
        )
        answers: dict[str, list[int]] = {}
        for batch in self.eval_dataloader:  # the probe is the first eval batch, as the samples
            query = batch["input_ids"]
            mask = query != pad_id
            out = self.ref_model.generate(
                input_ids=query.masked_fill(~mask, 0), attention_mask=mask, generation_config=config
            )
            prompts = self.processing_class.batch_decode(query, skip_special_tokens=True)
            for prompt, row in zip(prompts, out[:, query.shape[1] :].tolist(), strict=True):
                answers[prompt] = strip_response(row, [t != pad_id for t in row], stop)
            break
        if self.accelerator.num_processes > 1:
            answers = {k: v for part in gather_object([answers]) for k, v in part.items()}
        decode = self.processing_class.decode
        self.monitor.set_reference(
            {p: (ids, decode(ids, skip_special_tokens=True)) for p, ids in answers.items()}
        )
        if self.accelerator.is_main_process and answers:
            self.log(self.monitor.start_metrics())

    def _log_probe(self, probe: list[tuple[str, list[int], str]]) -> None:
        from accelerate.utils import gather_object

        if self.accelerator.num_processes > 1:
            probe = [row for part in gather_object([probe]) for row in part]
        if not self.accelerator.is_main_process or not probe:
            return
        metrics = self.monitor.probe_metrics(probe)
        if metrics:
            self.log(metrics)
