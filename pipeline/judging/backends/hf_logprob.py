"""The local Hugging Face pairwise judge: label-token probabilities, both orders, no generation.

For each pair we build two prompts (A first, then B first), run ONE batched forward pass over
all of them that computes only the last position's logits, and read P(first slot) as the softmax
over the label tokens' logits (every spelling of each label, summed). The two orders are then
combined by base.combine_orders. In rationale mode the model first writes a short rationale
(greedy `generate`), and the label tokens are read after it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from db.enums import JudgmentStatus
from db.label_rows import JudgmentRow
from pipeline.judging.backends import hf_common, hf_forward
from pipeline.judging.base import JudgeIdentity, PairInput, combine_orders
from pipeline.judging.config import JudgeConfig
from pipeline.judging.templates import Rendered


class HfLogprobJudge(hf_common.LabelTokenJudge):
    slots = ("A", "B")

    def __init__(self, config: JudgeConfig, *, model=None, tokenizer=None):
        super().__init__(config, model=model, tokenizer=tokenizer)
        self.on_progress: Callable[[int], Any] | None = None

    def empty_render(self) -> Rendered:
        return self.template.render(prompt="", response_a="", response_b="")

    @property
    def identity(self) -> JudgeIdentity:
        label_tokens = {
            "A": {"text": self.config.labels["A"], "ids": self.label_ids["A"]},
            "B": {"text": self.config.labels["B"], "ids": self.label_ids["B"]},
            "cue_suffix": self.suffix,
        }
        # the dtype `auto` resolved to: a switch to bf16 is a new version, never silent
        params = {**self.config.version_params(), "dtype": hf_common.dtype_name(self.model)}
        return self.logprob_identity(label_tokens, params)

    def _render(self, prompt: str, first: str, second: str):
        return self.template.render(
            prompt=prompt,
            response_a=first,
            response_b=second,
            constitution=self.config.constitution,
        )

    def encode(self, prompt: str, first: str, second: str) -> list[int]:
        """Token ids of the judge prompt with `first` shown as Response A (no length limit)."""
        rendered = self._render(prompt, first, second)
        return hf_common.prompt_ids(self.tokenizer, rendered, self.suffix)

    def fit_pair(self, pair: PairInput) -> tuple[list[list[int]], str, list[str]]:
        """Both orders' token ids ([A first, B first]) within max_length, cut alike, and the
        texts they were built from."""

        def both_orders(prompt: str, responses: list[str]) -> list[list[int]]:
            a, b = responses
            return [self.encode(prompt, a, b), self.encode(prompt, b, a)]

        return hf_common.fit_to_length(
            both_orders,
            self.tokenizer,
            pair.prompt,
            [pair.response_a, pair.response_b],
            self.config.max_length,
        )

    def encode_pair(self, pair: PairInput) -> tuple[list[int], list[int]]:
        ab, ba = self.fit_pair(pair)[0]
        return ab, ba

    def first_slot_probs(
        self, sequences: list[list[int]], groups: list[tuple[int, ...]] = ()
    ) -> list[tuple[float, float]]:
        """(P(first slot) among the label tokens, total label-token probability) per sequence.

        `groups` name sequences that start alike (a pair's two orders): their common part runs
        once."""
        out = []
        for mass_a, mass_b in self.slot_masses(sequences, on_batch=self.on_progress, groups=groups):
            # Softmax over the label logits == renormalised full-vocabulary probabilities.
            total = mass_a + mass_b
            out.append((mass_a / total if total > 0 else 0.5, total))
        return out

    def _rationale_sequences(self, pairs: list[PairInput]) -> tuple[list[list[int]], list[str]]:
        """Rationale mode: generate a rationale per order, then append the answer cue."""
        prompts: list[list[int]] = []
        cues: list[list[int]] = []
        for pair in pairs:
            _, prompt, (response_a, response_b) = self.fit_pair(pair)
            for first, second in ((response_a, response_b), (response_b, response_a)):
                rendered = self._render(prompt, first, second)
                base = hf_common.Rendered(rendered.text, rendered.rationale_cue, "")
                prompts.append(hf_common.prompt_ids(self.tokenizer, base))
                cue = rendered.answer_cue + self.suffix
                cues.append(self.tokenizer.encode(cue, add_special_tokens=False))
        thoughts = hf_forward.generate_batched(
            self.model,
            self.tokenizer,
            prompts,
            max_new_tokens=self.config.rationale_max_tokens,
            max_batch_tokens=self.batch_tokens,
        )
        sequences = [p + t + c for p, t, c in zip(prompts, thoughts, cues, strict=True)]
        texts = [self.tokenizer.decode(t, skip_special_tokens=True).strip() for t in thoughts]
        return sequences, texts

    def judge(self, pairs: list[PairInput]) -> list[JudgmentRow]:
        if not pairs:
            return []
        rationales: list[str] = []
        if self.config.rationale:
            sequences, rationales = self._rationale_sequences(pairs)
            order_ab, order_ba = sequences[0::2], sequences[1::2]
        else:
            order_ab, order_ba = map(list, zip(*(self.encode_pair(p) for p in pairs), strict=True))
        # Both orders go through the same length-sorted batches, and each pair's shared start
        # (the conversation before Response A) runs once for both.
        n = len(pairs)
        probs = self.first_slot_probs(order_ab + order_ba, [(i, n + i) for i in range(n)])
        rows = []
        for i, pair in enumerate(pairs):
            (p_ab, mass_ab), (p_first_ba, mass_ba) = probs[i], probs[n + i]
            row = combine_orders(p_ab, 1 - p_first_ba, self.config.tie_band, pair_id=pair.pair_id)
            raw = {"label_mass_ab": round(mass_ab, 6), "label_mass_ba": round(mass_ba, 6)}
            row = replace(row, raw_output=json.dumps(raw))
            if min(mass_ab, mass_ba) < self.config.min_label_mass:
                invalid = JudgmentStatus.INVALID
                row = replace(row, label=invalid.value, status=invalid)
            if rationales:
                first, second = rationales[2 * i], rationales[2 * i + 1]
                row = replace(row, rationale=f"[A shown first] {first}\n\n[B shown first] {second}")
            rows.append(row)
        return rows
