"""Reward-model training on an export snapshot with TRL's RewardTrainer.

    python -m pipeline.train.reward --config run.yaml [--loss_type soft ...]

Three losses (reward_config.LOSS_TYPES): the hard pairwise loss, the same with a margin taken from
the label's confidence, and soft labels (cross-entropy on p_chosen, Lee et al. 2023). Accuracy is
reported on a held-out split and, separately, on the held-out human-labelled pairs. The model is
saved with a model card and lineage.json naming the snapshot, the judges and the label counts.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from trl import RewardConfig, RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference

from pipeline.models import model_path as model_path_of
from pipeline.train.common import (
    HUMAN_SOURCES,
    SnapshotInfo,
    db_metrics_callback,
    load_snapshot,
    new_run_dir,
    precision_flags,
    report_to,
    run_script,
    use_distinct_pad_token,
    write_json,
)
from pipeline.train.config import parse_args, trl_kwargs
from pipeline.train.reward_config import RewardRunConfig


def format_pair_ids(
    tokenizer, prompt: str, response: str, max_length: int
) -> tuple[list[int], bool]:
    """Token ids of (prompt, response) as the reward model reads them; (ids, was_truncated).

    Chat tokenizers: the chat-templated prompt with the generation prompt, then the response and
    EOS - exactly the query + response that PPO feeds the reward model. Encoders (BERT-like): a
    text pair. Long prompts are cut from the left so the response is always seen whole.
    """
    is_encoder = getattr(tokenizer, "cls_token", None) and getattr(tokenizer, "sep_token", None)
    if is_encoder and not tokenizer.chat_template:
        ids = tokenizer(prompt, response, truncation="only_first", max_length=max_length)
        full = len(tokenizer(prompt, response)["input_ids"])
        return ids["input_ids"][:max_length], full > max_length
    if tokenizer.chat_template:
        messages = [{"role": "user", "content": prompt}]
        prompt_ids = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
    else:
        prompt_ids = tokenizer(prompt + "\n\n", add_special_tokens=True)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        response_ids = [*response_ids, tokenizer.eos_token_id]
    budget = max_length - len(response_ids)
    truncated = len(prompt_ids) > budget
    if budget <= 0:
        return response_ids[:max_length], True
    return [*prompt_ids[-budget:], *response_ids], truncated


def build_pair_dataset(dataset, tokenizer, config: RewardRunConfig):
    """Snapshot rows -> chosen_ids / rejected_ids (+ margin or p_chosen), is_human kept."""
    loss_type, scale, max_length = config.loss_type, config.margin_scale, config.max_length

    def encode(row: dict[str, Any]) -> dict[str, Any]:
        chosen, cut_c = format_pair_ids(tokenizer, row["prompt"], row["chosen"], max_length)
        rejected, cut_r = format_pair_ids(tokenizer, row["prompt"], row["rejected"], max_length)
        out = {
            "chosen_ids": chosen,
            "rejected_ids": rejected,
            "is_human": row["label_source"] in HUMAN_SOURCES,
            "truncated": cut_c or cut_r,
        }
        if loss_type == "margin":
            out["margin"] = scale * float(row["margin"])
        return out

    keep = ["pair_id", "p_chosen"] if loss_type == "soft" else ["pair_id"]
    drop = [c for c in dataset.column_names if c not in keep]
    return dataset.map(encode, remove_columns=drop, desc="Tokenizing pairs")


def split_pairs(dataset, config: RewardRunConfig):
    """Seeded split, stratified by label source: (train, heldout)."""
    import numpy as np

    rng = np.random.default_rng(config.seed)
    human = [i for i, h in enumerate(dataset["is_human"]) if h]
    ai = [i for i, h in enumerate(dataset["is_human"]) if not h]
    held: list[int] = []
    for indices, fraction in ((human, config.human_eval_fraction), (ai, config.eval_fraction)):
        n = int(round(fraction * len(indices)))
        if fraction > 0 and len(indices) >= 2:
            n = min(max(n, 1), len(indices) - 1)
        held += [indices[i] for i in rng.permutation(len(indices))[:n]]
    held_set = set(held)
    train = [i for i in range(len(dataset)) if i not in held_set]
    return dataset.select(train), dataset.select(sorted(held))


@dataclass
class PreferenceCollator(DataCollatorForPreference):
    """TRL's collator, also carrying the soft label p_chosen when the dataset has it."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        output = super().torch_call(examples)
        if "p_chosen" in examples[0]:
            output["p_chosen"] = torch.tensor([e["p_chosen"] for e in examples], dtype=torch.float)
        return output


def soft_preference_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, p_chosen: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy between the label's P(chosen) and the model's sigmoid(r_c - r_r)."""
    diff = chosen - rejected
    p = p_chosen.to(diff.dtype)
    logsigmoid = nn.functional.logsigmoid
    return -(p * logsigmoid(diff) + (1 - p) * logsigmoid(-diff)).mean()


class LabelledRewardTrainer(RewardTrainer):
    """RewardTrainer plus the soft-label loss: -[p log s(d) + (1 - p) log s(-d)], d = r_c - r_r.

    The hard and margin losses are TRL's own (the margin column drives the latter).
    """

    def _set_signature_columns_if_needed(self) -> None:
        if self._signature_columns is None:
            self._signature_columns = ["chosen_ids", "rejected_ids", "margin", "p_chosen"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        p_chosen = inputs.pop("p_chosen", None)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True)
        if p_chosen is not None:
            chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
            loss = soft_preference_loss(chosen, rejected, p_chosen)
            if self.args.center_rewards_coefficient is not None:
                centre = torch.mean((chosen + rejected) ** 2)
                loss = loss + self.args.center_rewards_coefficient * centre
        return (loss, outputs) if return_outputs else loss


@torch.no_grad()
def pairwise_accuracy(model, dataset, pad_token_id: int, batch_size: int = 32) -> float | None:
    """Share of pairs where r(chosen) > r(rejected); None for an empty set."""
    if len(dataset) == 0:
        return None
    collator = DataCollatorForPreference(pad_token_id=pad_token_id)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(dataset), batch_size):
        rows = dataset.select(range(start, min(start + batch_size, len(dataset))))
        batch = collator(
            [{"chosen_ids": r["chosen_ids"], "rejected_ids": r["rejected_ids"]} for r in rows]
        )
        logits = model(
            input_ids=batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
        ).logits.squeeze(-1)
        chosen, rejected = torch.chunk(logits.float(), chunks=2)
        correct += int((chosen > rejected).sum())
    model.train(was_training)
    return correct / len(dataset)


def trainer_args(config: RewardRunConfig, output_dir: Path, has_eval: bool) -> RewardConfig:
    """TRL's RewardConfig: the fields marked trl=True, plus what the run decides itself."""
    return RewardConfig(
        output_dir=str(output_dir),
        eval_strategy="steps" if has_eval else "no",
        save_strategy="no",  # the final model is saved once, with its card
        report_to=report_to(config.report_to),
        remove_unused_columns=True,
        disable_tqdm=False,
        **trl_kwargs(config),
        **precision_flags(config.precision),
    )


@dataclass
class RewardData:
    """The tokenised snapshot, split: what the trainer and the accuracy checks read."""

    pairs: Any
    train: Any
    heldout: Any
    human_heldout: Any

    def counts(self) -> dict[str, Any]:
        return {
            "train_pairs": len(self.train),
            "heldout_pairs": len(self.heldout),
            "human_heldout_pairs": len(self.human_heldout),
            "truncated_pairs": int(sum(self.pairs["truncated"])),
        }


def prepare_data(snapshot, tokenizer, config: RewardRunConfig) -> RewardData:
    pairs = build_pair_dataset(snapshot, tokenizer, config)
    if config.loss_type != "soft" and "p_chosen" in pairs.column_names:
        pairs = pairs.remove_columns("p_chosen")
    train, heldout = split_pairs(pairs, config)
    return RewardData(pairs, train, heldout, heldout.filter(lambda r: r["is_human"]))


def build_trainer(
    config: RewardRunConfig, model_path: str, tokenizer, data: RewardData, output_dir: Path
) -> LabelledRewardTrainer:
    from transformers import AutoModelForSequenceClassification

    args = trainer_args(config, output_dir, has_eval=len(data.heldout) > 0)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path, num_labels=1, dtype=torch.float32
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    return LabelledRewardTrainer(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.heldout if len(data.heldout) else None,
        processing_class=tokenizer,
        data_collator=PreferenceCollator(pad_token_id=tokenizer.pad_token_id),
        callbacks=[db_metrics_callback(config.job_id)],
    )


def train_and_measure(trainer, config: RewardRunConfig, data: RewardData, pad: int):
    """Train; the held-out accuracies before (if asked) and after. (metrics, global step)"""
    metrics = data.counts()
    batch = config.per_device_eval_batch_size
    splits = {"heldout_accuracy": data.heldout, "human_heldout_accuracy": data.human_heldout}
    if config.eval_before_training:
        for name, split in splits.items():
            metrics[f"{name}_before"] = pairwise_accuracy(trainer.model, split, pad, batch)
    result = trainer.train()
    metrics["train_loss"] = result.training_loss
    metrics["steps"] = result.global_step
    for name, split in splits.items():
        metrics[name] = pairwise_accuracy(trainer.model, split, pad, batch)
    return metrics, result.global_step


def save_outputs(
    config: RewardRunConfig,
    info: SnapshotInfo,
    model_path: str,
    metrics: dict[str, Any],
    output_dir: Path,
) -> None:
    """Rank 0: lineage.json and the model card beside the model, result.json in the run."""
    model_dir = output_dir / "model"
    lineage = {
        "kind": "reward_model",
        "job_id": config.job_id,
        "base_model": model_path,
        "loss_type": config.loss_type,
        "snapshot": info.as_dict(),
        "config": config.to_dict(),
        "metrics": metrics,
    }
    write_json(model_dir / "lineage.json", lineage)
    (model_dir / "README.md").write_text(model_card(config, info, model_path, metrics))
    write_json(
        output_dir / "result.json", {"metrics": metrics, "artifacts": {"model": str(model_dir)}}
    )


def train_reward(config: RewardRunConfig) -> dict[str, Any]:
    """Run one reward-model training; returns the final metrics and the artifact paths."""
    from transformers import AutoTokenizer

    started = time.perf_counter()
    output_dir = new_run_dir("reward", config.output_dir)
    model_path = model_path_of(config.model_name_or_path)
    snapshot, info = load_snapshot(config.snapshot)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    use_distinct_pad_token(tokenizer)
    data = prepare_data(snapshot, tokenizer, config)
    trainer = build_trainer(config, model_path, tokenizer, data, output_dir)
    metrics, step = train_and_measure(trainer, config, data, tokenizer.pad_token_id)
    metrics["runtime_s"] = round(time.perf_counter() - started, 2)

    model_dir = output_dir / "model"
    result = {"metrics": metrics, "artifacts": {"model": str(model_dir)}}
    trainer.save_model(str(model_dir))  # the main process writes; all ranks take part
    if not trainer.is_world_process_zero():  # several processes: rank 0 writes the rest
        return {**result, "output_dir": str(output_dir)}
    tokenizer.save_pretrained(str(model_dir))
    save_outputs(config, info, model_path, metrics, output_dir)
    if config.job_id is not None:
        from pipeline.train.jobs import record_metrics

        final = {f"final/{k}": v for k, v in metrics.items() if isinstance(v, int | float)}
        record_metrics(config.job_id, step, final)
    return {**result, "output_dir": str(output_dir)}


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a (no pairs)"
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value)


def model_card(config: RewardRunConfig, info: SnapshotInfo, base: str, metrics: dict) -> str:
    judges = ", ".join(info.judge_versions) or "none (human labels only)"
    rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in metrics.items())
    scale = f" (margin x {config.margin_scale})" if config.loss_type == "margin" else ""
    return f"""---
library_name: transformers
tags: [reward-model, rlaif, trl]
base_model: {Path(base).name}
---

# Reward model trained on RLAIF workbench labels

- **Snapshot:** `{info.id or "(no id)"}` at `{info.path}`
- **Judge versions:** {judges}
- **Labels:** {info.n_human} human (or reviewer override), {info.n_ai} AI
- **Loss:** {config.loss_type}{scale}
- **Base model:** `{base}`
- **Training job:** {config.job_id if config.job_id is not None else "(run outside the job table)"}

Accuracy is the share of held-out pairs where the model scores the chosen response higher.
`human_heldout_accuracy` counts only held-out pairs labelled by people: trust it over the rest,
which partly measures agreement with the AI judge.

| metric | value |
|---|---|
{rows}

Reproduce with `python -m pipeline.train.reward --config config.yaml`; the full configuration is
in `lineage.json`.
"""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    config = parse_args(RewardRunConfig, argv)
    result = train_reward(config)
    m = result["metrics"]
    print(
        f"reward model saved to {result['artifacts']['model']}: held-out accuracy "
        f"{_fmt(m['heldout_accuracy'])} ({m['heldout_pairs']} pairs), human held-out "
        f"{_fmt(m['human_heldout_accuracy'])} ({m['human_heldout_pairs']} pairs)"
    )
    return result


if __name__ == "__main__":
    run_script(main)
