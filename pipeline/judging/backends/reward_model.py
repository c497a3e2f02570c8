"""Reward-model backend: an AutoModelForSequenceClassification (num_labels=1) scores each
response; p = sigmoid(r_A - r_B). Its score does not depend on the order, so both per-order
probabilities equal p and a pair is never swap-inconsistent."""

from __future__ import annotations

import inspect
import json
from dataclasses import replace

import torch

from db.label_rows import JudgmentRow
from pipeline.errors import UserError
from pipeline.judging.backends import hf_common, hf_forward
from pipeline.judging.base import JudgeIdentity, PairInput, combine_orders, sigmoid
from pipeline.judging.config import JudgeConfig


class RewardModelJudge:
    def __init__(self, config: JudgeConfig):
        from transformers import AutoModelForSequenceClassification

        self.config = config
        self.source, self.model_id, self.revision = hf_common.resolve_model(
            config.model, config.revision
        )
        device = hf_common.pick_device(config.device)
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                self.source,
                revision=config.revision,
                dtype=hf_common.pick_dtype(config.dtype, device, self.model_id),
            )
        except OSError as error:
            raise UserError(f"cannot load the reward model '{self.source}': {error}") from error
        if model.config.num_labels != 1:
            raise UserError(f"{self.source}: a reward model needs num_labels=1")
        self.model = model.to(device).eval()
        self.tokenizer = hf_common.load_tokenizer(self.source, config.revision)
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.on_progress = None
        self.batch_tokens = hf_forward.batch_budget(config.max_batch_tokens, self.model)
        self._takes_positions = "position_ids" in inspect.signature(self.model.forward).parameters

    @property
    def identity(self) -> JudgeIdentity:
        return JudgeIdentity(
            name=self.config.name,
            backend="reward_model",
            model_id=self.model_id,
            model_revision=self.revision,
            template_hash=None,
            label_tokens={},
            params={
                "max_length": self.config.max_length,
                "dtype": hf_common.dtype_name(self.model),
                "tie_band": self.config.tie_band,
            },
            confidence_kind="reward_model",
        )

    def encode(self, prompt: str, response: str) -> list[int]:
        """The conversation's token ids, cut to max_length (hf_common.fit_to_length)."""

        def conversation(prompt: str, responses: list[str]) -> list[list[int]]:
            if not getattr(self.tokenizer, "chat_template", None):
                return [self.tokenizer(prompt + "\n" + responses[0])["input_ids"]]
            messages = [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": responses[0]},
            ]
            text = self.tokenizer.apply_chat_template(messages, tokenize=False)
            return [self.tokenizer(text, add_special_tokens=False)["input_ids"]]

        fitted = hf_common.fit_to_length(
            conversation, self.tokenizer, prompt, [response], self.config.max_length
        )
        return list(fitted[0][0])

    def rewards(self, sequences: list[list[int]]) -> list[float]:
        device = next(self.model.parameters()).device
        out = [0.0] * len(sequences)
        pad = self.tokenizer.pad_token_id
        with torch.inference_mode():
            for batch in hf_forward.make_batches([len(s) for s in sequences], self.batch_tokens):
                rows = [sequences[i] for i in batch]
                inputs = hf_forward.left_pad(rows, pad, device)
                if not self._takes_positions:
                    inputs.pop("position_ids")
                # Left padding: the model's pooled position is each row's last real token.
                scores = self.model(**inputs).logits.float()[:, 0]
                for index, value in zip(batch, scores.tolist(), strict=True):
                    out[index] = value
                if self.on_progress:
                    self.on_progress(len(batch))
        return out

    def judge(self, pairs: list[PairInput]) -> list[JudgmentRow]:
        if not pairs:
            return []
        sequences = [self.encode(p.prompt, p.response_a) for p in pairs]
        sequences += [self.encode(p.prompt, p.response_b) for p in pairs]
        rewards = self.rewards(sequences)
        rows = []
        for i, pair in enumerate(pairs):
            r_a, r_b = rewards[i], rewards[len(pairs) + i]
            p = sigmoid(r_a - r_b)
            row = combine_orders(p, p, self.config.tie_band, pair_id=pair.pair_id)
            rows.append(replace(row, raw_output=json.dumps({"r_a": r_a, "r_b": r_b})))
        return rows
