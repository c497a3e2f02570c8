"""Text scorers as PPO reward models: PPOTrainer scores with a sequence classifier's backbone +
`score` head over the policy's token ids; `TextScoreRewardModel` offers exactly that interface
over any text scorer (the d-RLAIF judge, or a reward model with its own tokenizer), so
PPOTrainer itself stays unmodified."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn as nn

TextScorer = Callable[[Sequence[str], Sequence[str]], list[float]]


class _TextScoreBackbone(nn.Module):
    """Decodes each (prompt, response) from the policy's ids and scores it as text. Returns the
    score broadcast over every position as `hidden_states[-1]`: get_reward picks the last one."""

    def __init__(self, owner: TextScoreRewardModel) -> None:
        super().__init__()
        self._owner = [owner]  # a list: not registered as a submodule (no cycle)

    def forward(self, input_ids, attention_mask, **_: Any) -> SimpleNamespace:
        owner = self._owner[0]
        prompts, responses = [], []
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
            tokens = [t for t, m in zip(ids, mask, strict=True) if m]
            prompt, rest = owner.split(tokens)
            prompts.append(prompt)
            responses.append(owner.tokenizer.decode(rest, skip_special_tokens=True))
        scores = owner.scorer(prompts, responses)
        owner.last_batch = list(zip(prompts, responses, scores, strict=True))
        values = torch.tensor(scores, dtype=torch.float32, device=input_ids.device)
        hidden = values[:, None, None].expand(-1, input_ids.shape[1], 1)
        return SimpleNamespace(hidden_states=(hidden,))


class TextScoreRewardModel(nn.Module):
    """What PPOTrainer needs of a reward model (`base_model_prefix`, a backbone, `score`), over a
    text scorer: the d-RLAIF judge, or a reward model whose tokenizer differs from the policy's."""

    base_model_prefix = "backbone"

    def __init__(self, scorer: TextScorer, tokenizer, prompt_ids: dict[str, list[int]]) -> None:
        super().__init__()
        self.scorer, self.tokenizer = scorer, tokenizer
        pad = tokenizer.pad_token_id
        # Keys without pad tokens: get_reward masks them out of the query too.
        self._prompts = {
            tuple(t for t in ids if t != pad): text for text, ids in prompt_ids.items()
        }
        self._lengths = sorted({len(k) for k in self._prompts}, reverse=True)
        self.backbone = _TextScoreBackbone(self)
        self.score = nn.Identity()
        self.anchor = nn.Parameter(torch.zeros(()), requires_grad=False)  # gives it a device
        self.last_batch: list[tuple[str, str, float]] = []

    def split(self, tokens: list[int]) -> tuple[str, list[int]]:
        for length in self._lengths:
            text = self._prompts.get(tuple(tokens[:length]))
            if text is not None:
                return text, tokens[length:]
        raise RuntimeError("a rollout's query matches none of the training prompts")


class RewardModelTextScorer:
    """A trained reward model read through its own tokenizer (e.g. the MiniLM one)."""

    def __init__(
        self,
        path: str,
        device: torch.device,
        max_length: int = 512,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype)
        self.model = model.to(device).eval()
        self.device, self.max_length = device, max_length

    @torch.no_grad()
    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        from trl.trainer.utils import pad

        from pipeline.train.reward import format_pair_ids

        ids = [
            torch.tensor(format_pair_ids(self.tokenizer, p, r, self.max_length)[0])
            for p, r in zip(prompts, responses, strict=True)
        ]
        input_ids = pad(ids, padding_value=self.tokenizer.pad_token_id, padding_side="right")
        mask = pad([torch.ones_like(i) for i in ids], padding_value=0, padding_side="right")
        logits = self.model(
            input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
        )
        return logits.logits.squeeze(-1).float().tolist()
