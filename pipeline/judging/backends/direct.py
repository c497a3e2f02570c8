"""Direct RLAIF (d-RLAIF): the judge rates ONE response 1-10.

score = sum_k k * P(k) over the rating tokens, rescaled from [1, 10] to [-1, 1]. P(k) comes from
the next-token distribution after the answer cue, restricted to the ratings. When "10" is not
one token, it is "1" followed by "0": we feed the prompt plus the "1" token and keep the last two
positions' logits (one forward pass), so P(10) = P(1 first) * P("0" | "1") and P(1) keeps the
rest.

Python API (the PPO reward in pipeline/train/ uses it):

    scorer = DirectScorer("path/to/model", device="cpu")
    rewards = scorer.score(prompts, responses)   # list[float] in [-1, 1]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.errors import UserError
from pipeline.judging.backends import hf_common, hf_forward
from pipeline.judging.base import JudgeIdentity
from pipeline.judging.config import TRUNCATION
from pipeline.judging.templates import load_template

RATINGS = tuple(range(1, 11))


@dataclass(frozen=True)
class DirectScore:
    score: float  # in [-1, 1]
    expected_rating: float  # sum k * P(k), in [1, 10]
    digit_probs: list[float]  # P(1) .. P(10), summing to 1


def expected_rating(probs: Sequence[float]) -> float:
    return sum(k * p for k, p in zip(RATINGS, probs, strict=True))


def rescale(rating: float) -> float:
    """[1, 10] -> [-1, 1]."""
    return (rating - 1) / 4.5 - 1


class DirectScorer:
    def __init__(
        self,
        model_path: str,
        device: str = "auto",
        template: str | None = None,
        *,
        dtype: str = "auto",
        max_batch_tokens: int = 0,
        max_length: int = 2048,
        constitution: str | None = None,
        revision: str | None = None,
    ):
        self.source, self.model_id, self.revision = hf_common.resolve_model(model_path, revision)
        self.template = load_template(template or "direct_rating")
        self.dtype, self.max_batch_tokens, self.max_length = dtype, max_batch_tokens, max_length
        self.constitution = constitution
        self.model, self.tokenizer = hf_common.load_causal_lm(
            self.source, revision, dtype, device, self.model_id
        )
        self.max_batch_tokens = hf_forward.batch_budget(max_batch_tokens, self.model)
        self._find_rating_tokens()

    def _find_rating_tokens(self) -> None:
        tokenizer = self.tokenizer
        self.variants: dict[int, list[int]] = {
            k: hf_common.label_token_ids(tokenizer, str(k)) for k in range(1, 10)
        }
        ten = [
            t
            for t in hf_common.label_token_ids(tokenizer, "10")
            if tokenizer.decode([t]).strip() == "10"
        ]
        if ten:
            self.variants[10] = ten
        hf_common.check_disjoint({str(k): ids for k, ids in self.variants.items()})
        self.ten_is_token = bool(ten)
        self.zero_id: int | None = None
        self.one_id: int | None = None
        cue = self.template.render(prompt="", response="").answer_cue
        self.suffix = hf_common.cue_suffix(tokenizer, [str(k) for k in RATINGS], cue)
        if not self.ten_is_token:
            ones = self.variants[1]
            # After "Rating:" a model writes " 7"; after "Rating: " it writes "7".
            self.one_id = (
                ones[0]
                if (not (cue + self.suffix) or (cue + self.suffix)[-1].isspace())
                else ones[-1]
            )
            zero = tokenizer.encode("0", add_special_tokens=False)
            if not zero:
                raise UserError("the tokenizer cannot encode the digit 0")
            self.zero_id = zero[0]
        self.token_ids = [t for k in sorted(self.variants) for t in self.variants[k]]
        if self.zero_id is not None:
            self.token_ids.append(self.zero_id)

    @property
    def identity(self) -> JudgeIdentity:
        return JudgeIdentity(
            name=None,
            backend="direct",
            model_id=self.model_id,
            model_revision=self.revision,
            template_hash=self.template.hash,
            label_tokens={
                "ratings": {str(k): v for k, v in self.variants.items()},
                "ten": "token" if self.ten_is_token else [self.one_id, self.zero_id],
                "cue_suffix": self.suffix,
            },
            params={
                "max_length": self.max_length,
                "truncation": TRUNCATION,
                "dtype": hf_common.dtype_name(self.model),  # what auto resolved to
                "constitution": self.constitution,
            },
            confidence_kind="expected_rating",
        )

    def encode(self, prompt: str, response: str) -> list[int]:
        """The rating prompt's token ids, cut to max_length (hf_common.fit_to_length)."""

        def rating_prompt(prompt: str, responses: list[str]) -> list[list[int]]:
            rendered = self.template.render(
                prompt=prompt, response=responses[0], constitution=self.constitution
            )
            ids = hf_common.prompt_ids(self.tokenizer, rendered, self.suffix)
            return [ids + [self.one_id] if self.one_id is not None else ids]

        fitted = hf_common.fit_to_length(
            rating_prompt, self.tokenizer, prompt, [response], self.max_length
        )
        return fitted[0][0]

    def score_detailed(
        self, prompts: Sequence[str], responses: Sequence[str], on_batch=None
    ) -> list[DirectScore]:
        if len(prompts) != len(responses):
            raise ValueError("prompts and responses must have the same length")
        if not prompts:
            return []
        sequences = [self.encode(p, r) for p, r in zip(prompts, responses, strict=True)]
        keep = 1 if self.ten_is_token else 2
        logprobs = hf_forward.last_position_logprobs(
            self.model,
            sequences,
            self.token_ids,
            pad_id=self.tokenizer.pad_token_id,
            max_batch_tokens=self.max_batch_tokens,
            keep=keep,
            on_batch=on_batch,
        )
        return [self._from_logprobs(row.tolist()) for row in logprobs]

    def _from_logprobs(self, rows: list[list[float]]) -> DirectScore:
        answer = dict(zip(self.token_ids, rows[0], strict=True))
        mass = {k: sum(math.exp(answer[t]) for t in ids) for k, ids in self.variants.items()}
        if not self.ten_is_token:
            p_zero = math.exp(rows[1][self.token_ids.index(self.zero_id)])
            mass[10] = mass[1] * p_zero
            mass[1] = mass[1] * (1 - p_zero)
        total = sum(mass.values())
        probs = [mass[k] / total for k in RATINGS]
        rating = expected_rating(probs)
        return DirectScore(score=rescale(rating), expected_rating=rating, digit_probs=probs)

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """d-RLAIF rewards in [-1, 1], one per (prompt, response)."""
        return [s.score for s in self.score_detailed(prompts, responses)]


def score_rows(scores: Sequence[DirectScore], response_ids: Sequence[int]) -> list[dict[str, Any]]:
    return [
        {
            "response_id": rid,
            "score": s.score,
            "expected_rating": s.expected_rating,
            "digit_probs": s.digit_probs,
        }
        for rid, s in zip(response_ids, scores, strict=True)
    ]
