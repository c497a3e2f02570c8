"""PPO with TRL's PPOTrainer, the one module of the project that imports trl.experimental.

    python -m pipeline.train.ppo --config run.yaml

Models: the policy, a frozen reference copy, a value model and the reward. The reward is either a
trained reward model (`rlaif train reward`), used as is when it shares the policy's tokenizer, or
(d-RLAIF) a judge's direct 1-10 rating rescaled to [-1, 1]. PPOTrainer scores with a sequence
classifier's backbone + `score` head over the policy's token ids; `TextScoreRewardModel` offers
exactly that interface over any text scorer, so PPOTrainer itself stays unmodified.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from trl.experimental.ppo import PPOConfig, PPOTrainer
from trl.experimental.ppo.ppo_trainer import batch_generation, truncate_response
from trl.experimental.utils import get_reward
from trl.models.utils import unwrap_model_for_generation

from pipeline.errors import UserError
from pipeline.ingest.records import sha256
from pipeline.models import model_path
from pipeline.train.common import (
    db_metrics_callback,
    load_snapshot,
    new_run_dir,
    precision_flags,
    process_rank,
    report_to,
    run_script,
    use_distinct_pad_token,
    write_json,
)
from pipeline.train.config import parse_args, trl_kwargs
from pipeline.train.ppo_config import PpoRunConfig
from pipeline.train.ppo_monitor import MonitoredTrainer, build_probe_judge
from pipeline.train.text_reward import RewardModelTextScorer, TextScoreRewardModel

__all__ = ["RlaifPPOTrainer", "TextScoreRewardModel", "main", "train_ppo"]


class RlaifPPOTrainer(MonitoredTrainer, PPOTrainer):
    """PPOTrainer that also writes its sample completions to samples.jsonl (for the app), and
    adds the reward-hacking / collapse monitors (pipeline/train/monitors.py) to its logs."""

    samples_path: Path | None = None
    # Set by transformers' Trainer.__init__, which PPOTrainer does not call; Trainer._save reads
    # it on the ranks that do not write (several processes).
    is_distributed_loading_by_transformers = False

    @torch.no_grad()
    def generate_completions(self, sampling: bool = False) -> None:
        if self.eval_dataset is None or self.samples_path is None:
            return
        from transformers import GenerationConfig

        if self.monitor is not None:
            self.monitor.capture.active = False  # the eval rollouts are not training samples
        pad_id, rows = self.processing_class.pad_token_id, []
        probe: list[tuple[str, list[int], str]] = []
        config = GenerationConfig(max_new_tokens=self.args.response_length, do_sample=False)
        with unwrap_model_for_generation(self.model, self.accelerator) as unwrapped:
            for batch in self.eval_dataloader:
                query = batch["input_ids"]
                context = query.shape[1]
                query_response, _ = batch_generation(
                    unwrapped.policy, query, query.shape[0], pad_id, config
                )
                response = query_response[:, context:]
                if self.stop_token_id is not None:
                    response = truncate_response(self.stop_token_id, pad_id, response)
                _, score, _ = get_reward(
                    self.reward_model, torch.cat((query, response), 1), pad_id, context
                )
                queries = self.processing_class.batch_decode(query, skip_special_tokens=True)
                answers = self.processing_class.batch_decode(response, skip_special_tokens=True)
                if self.monitor is not None:
                    probe += self.probe_rows(queries, response, answers)
                for q, a, s in zip(queries, answers, score.float().tolist(), strict=True):
                    rows.append(
                        {"step": self.state.global_step, "query": q, "response": a, "score": s}
                    )
                if sampling:
                    break
        if self.accelerator.num_processes > 1:  # each rank answered its share of the prompts
            from accelerate.utils import gather_object

            rows = [row for part in gather_object([rows]) for row in part]
        if self.accelerator.is_main_process:
            with open(self.samples_path, "a", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        if self.monitor is not None:
            self.monitor.capture.active = True
            self._log_probe(probe)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        # Several processes wrap the policy+value model in DDP, which hides `.policy`: unwrap,
        # so that PPOTrainer.save_model saves the policy alone, as in one process.
        wrapped = self.model
        if not self.is_deepspeed_enabled:
            self.model = self.accelerator.unwrap_model(self.model)
        try:
            super().save_model(output_dir, _internal_call)
        finally:
            self.model = wrapped


def _prompt_ids(tokenizer, prompt: str, max_length: int) -> list[int]:
    if tokenizer.chat_template:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
        )["input_ids"]
    else:
        ids = tokenizer(prompt + "\n\n")["input_ids"]
    return list(ids[-max_length:])


def _lineage(folder: str | None) -> dict[str, Any]:
    """A trained model's lineage.json (empty when there is none)."""
    path = Path(folder or "") / "lineage.json"
    return json.loads(path.read_text()) if folder and path.is_file() else {}


def _snapshot_for(config: PpoRunConfig) -> str:
    """The prompts' snapshot: the config's, else the reward model's (from its lineage)."""
    rm_lineage = _lineage(config.reward_model)
    snapshot = config.snapshot or (rm_lineage.get("snapshot") or {}).get("path", "")
    if not snapshot:
        raise UserError("no snapshot to take prompts from: set snapshot")
    return snapshot


def _same_tokenizer(a, b) -> bool:
    return a.get_vocab() == b.get_vocab() and a.pad_token_id == b.pad_token_id


@dataclass
class Prompts:
    """The snapshot's distinct prompts, shuffled and split; `ids`: each prompt's token ids."""

    train: list[str]
    eval: list[str]
    ids: dict[str, list[int]]

    def dataset(self, prompts: list[str]):
        from datasets import Dataset

        return Dataset.from_dict({"input_ids": [self.ids[p] for p in prompts]}) if prompts else None


def split_prompts(config: PpoRunConfig, tokenizer, dataset, source: str) -> Prompts:
    prompts = list(dict.fromkeys(dataset["prompt"]))
    order = torch.randperm(len(prompts), generator=torch.Generator().manual_seed(config.seed))
    prompts = [prompts[i] for i in order.tolist()]
    batch = config.per_device_train_batch_size
    n_eval = min(config.eval_prompts, max(0, len(prompts) - batch))
    if len(prompts) - n_eval < batch:
        raise UserError(
            f"{source}: {len(prompts) - n_eval} distinct prompts; PPO needs at least "
            f"per_device_train_batch_size={batch}"
        )
    ids = {p: _prompt_ids(tokenizer, p, config.max_prompt_length) for p in prompts}
    return Prompts(prompts[n_eval:], prompts[:n_eval], ids)


def ppo_args(config: PpoRunConfig, output_dir: Path, n_eval: int) -> PPOConfig:
    """TRL's PPOConfig: the fields marked trl=True, plus what the run decides itself."""
    options = trl_kwargs(config)
    if not n_eval:
        options["num_sample_generations"] = 0
    return PPOConfig(
        output_dir=str(output_dir),
        # one eval batch per rank; drop_last would drop a batch bigger than a rank's share
        per_device_eval_batch_size=max(1, n_eval // process_rank()[1]),
        stop_token="eos",
        save_strategy="no",
        report_to=report_to(config.report_to),
        **options,
        **precision_flags(config.precision),
    )


def build_reward(config: PpoRunConfig, tokenizer, prompts: Prompts, device, score_dtype: str):
    """(reward model, its lineage entry, the value model's folder or None)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if config.judge_model:
        from pipeline.judging.backends.direct import DirectScorer

        judge = model_path(config.judge_model)
        # the scorer runs in the training's precision: bf16 where it autocasts, else float32
        scorer = DirectScorer(judge, device=str(device), dtype=score_dtype)
        reward_info = {"kind": "direct_judge", "judge_model": judge}
        return TextScoreRewardModel(scorer.score, tokenizer, prompts.ids), reward_info, None
    rm_path = model_path(config.reward_model)
    rm_tokenizer = AutoTokenizer.from_pretrained(rm_path)
    lineage = _lineage(config.reward_model)
    reward_info: dict[str, Any] = {"kind": "reward_model", "path": rm_path, "lineage": lineage}
    if _same_tokenizer(tokenizer, rm_tokenizer):
        reward_info["tokens"] = "shared with the policy"
        model = AutoModelForSequenceClassification.from_pretrained(rm_path, num_labels=1)
        return model, reward_info, rm_path
    text_scorer = RewardModelTextScorer(rm_path, device, dtype=getattr(torch, score_dtype))
    reward_info["tokens"] = "own tokenizer: responses re-tokenised as text"
    return TextScoreRewardModel(text_scorer, tokenizer, prompts.ids), reward_info, None


def build_trainer(config: PpoRunConfig, policy_path: str, tokenizer, prompts: Prompts, output_dir):
    """(the trainer with its policy, reference, value and reward models; the reward's lineage)"""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    args = ppo_args(config, output_dir, len(prompts.eval))
    score_dtype = "bfloat16" if args.bf16 else "float32"
    policy = AutoModelForCausalLM.from_pretrained(policy_path, dtype=torch.float32)
    reference = AutoModelForCausalLM.from_pretrained(policy_path, dtype=torch.float32)
    for model in (policy, reference):
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    reward_model, reward_info, rm_value = build_reward(
        config, tokenizer, prompts, args.device, score_dtype
    )
    value_path = config.value_model and model_path(config.value_model)
    value_model = AutoModelForSequenceClassification.from_pretrained(
        value_path or rm_value or policy_path, num_labels=1, dtype=torch.float32
    )
    value_model.config.pad_token_id = tokenizer.pad_token_id
    trainer = RlaifPPOTrainer(
        args=args,
        processing_class=tokenizer,
        model=policy,
        ref_model=reference,
        reward_model=reward_model,
        value_model=value_model,
        train_dataset=prompts.dataset(prompts.train),
        eval_dataset=prompts.dataset(prompts.eval),
        callbacks=[db_metrics_callback(config.job_id)],
    )
    trainer.samples_path = output_dir / "samples.jsonl"
    if config.monitors:
        is_rm = config.mode == "reward_model"
        main = process_rank()[0] == 0  # the probe is judged on rank 0 only
        wanted = is_rm and prompts.eval and main
        judge = build_probe_judge(config.probe_judge, args.device) if wanted else None
        trainer.add_monitor(reward_is_model=is_rm, judge=judge)
    return trainer, reward_info


def last_metrics(trainer, started: float) -> dict[str, Any]:
    logged = [e for e in trainer.state.log_history if "objective/kl" in e]
    last = logged[-1] if logged else {}
    metrics = {k: v for k, v in last.items() if isinstance(v, int | float)}
    metrics.update(
        updates=trainer.state.global_step, runtime_s=round(time.perf_counter() - started, 2)
    )
    return metrics


def train_ppo(config: PpoRunConfig) -> dict[str, Any]:
    from transformers import AutoTokenizer

    started = time.perf_counter()
    torch.manual_seed(config.seed)
    output_dir = new_run_dir("ppo", config.output_dir)
    policy_path = model_path(config.policy_model)
    dataset, info = load_snapshot(_snapshot_for(config))
    tokenizer = AutoTokenizer.from_pretrained(policy_path, padding_side="left")
    use_distinct_pad_token(tokenizer)
    prompts = split_prompts(config, tokenizer, dataset, info.path)
    trainer, reward_info = build_trainer(config, policy_path, tokenizer, prompts, output_dir)
    trainer.train()
    trainer.generate_completions(sampling=True)  # the final policy's answers

    metrics = last_metrics(trainer, started)
    policy_dir = output_dir / "policy"
    trainer.save_model(str(policy_dir))  # the main process writes; all ranks take part
    artifacts = {"policy": str(policy_dir), "samples": str(trainer.samples_path)}
    result = {"metrics": metrics, "artifacts": artifacts, "output_dir": str(output_dir)}
    if not trainer.is_world_process_zero():  # several processes: rank 0 writes the rest
        return result
    tokenizer.save_pretrained(str(policy_dir))
    lineage = {
        "kind": "ppo_policy",
        "job_id": config.job_id,
        "base_policy": policy_path,
        "reward": reward_info,
        "snapshot": info.as_dict(),
        # sha256 of each prompt text (as Prompt.text_hash): `rlaif evaluate` holds these out.
        "train_prompt_hashes": sorted(sha256(p) for p in prompts.train),
        "config": config.to_dict(),
        "metrics": metrics,
    }
    write_json(policy_dir / "lineage.json", lineage)
    (policy_dir / "README.md").write_text(_model_card(config, lineage))
    write_json(output_dir / "result.json", {"metrics": metrics, "artifacts": artifacts})
    return result


def _model_card(config: PpoRunConfig, lineage: dict[str, Any]) -> str:
    reward = lineage["reward"]
    if reward["kind"] == "direct_judge":
        source = f"d-RLAIF: direct 1-10 rating by `{reward['judge_model']}`"
    else:
        rm_snapshot = (reward.get("lineage") or {}).get("snapshot") or {}
        source = f"reward model `{reward['path']}` (snapshot `{rm_snapshot.get('id')}`)"
    snap = lineage["snapshot"]
    metrics = "\n".join(f"| {k} | {v:.4g} |" for k, v in lineage["metrics"].items())
    return f"""---
library_name: transformers
tags: [rlaif, ppo, trl]
---

# Policy trained with PPO on RLAIF workbench labels

- **Base policy:** `{lineage["base_policy"]}`
- **Reward:** {source}
- **Prompts from snapshot:** `{snap["id"]}` ({snap["n_human"]} human, {snap["n_ai"]} AI labels;
  judges: {", ".join(snap["judge_versions"]) or "none"})
- **Training job:** {config.job_id}

Lineage: this policy -> reward -> snapshot -> labels; see `lineage.json`.

| metric (last update) | value |
|---|---|
{metrics}
"""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    config = parse_args(PpoRunConfig, argv)
    result = train_ppo(config)
    print(f"policy saved to {result['artifacts']['policy']}")
    return result


if __name__ == "__main__":
    run_script(main)
