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
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn as nn
from trl.experimental.ppo import PPOConfig, PPOTrainer
from trl.experimental.ppo.ppo_trainer import batch_generation, truncate_response
from trl.experimental.utils import get_reward
from trl.models.utils import unwrap_model_for_generation

from pipeline.errors import UserError
from pipeline.ingest.records import sha256
from pipeline.train.common import (
    db_metrics_callback,
    load_snapshot,
    new_run_dir,
    precision_flags,
    process_rank,
    report_to,
    resolve_model,
    run_script,
    use_distinct_pad_token,
    write_json,
)
from pipeline.train.ppo_config import PpoRunConfig
from pipeline.train.ppo_monitor import MonitoredTrainer, build_probe_judge

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


def _snapshot_for(config: PpoRunConfig) -> tuple[str, dict[str, Any]]:
    """The prompts' snapshot and the reward model's lineage (empty for d-RLAIF)."""
    rm_lineage: dict[str, Any] = {}
    if config.reward_model:
        path = Path(config.reward_model) / "lineage.json"
        rm_lineage = json.loads(path.read_text()) if path.is_file() else {}
    snapshot = config.snapshot or (rm_lineage.get("snapshot") or {}).get("path", "")
    if not snapshot:
        raise UserError("no snapshot to take prompts from: set snapshot")
    return snapshot, rm_lineage


def _same_tokenizer(a, b) -> bool:
    return a.get_vocab() == b.get_vocab() and a.pad_token_id == b.pad_token_id


def train_ppo(config: PpoRunConfig) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    started = time.perf_counter()
    torch.manual_seed(config.seed)
    output_dir = new_run_dir("ppo", config.output_dir)
    policy_path = resolve_model(config.policy_model)
    snapshot, rm_lineage = _snapshot_for(config)
    dataset, info = load_snapshot(snapshot)

    tokenizer = AutoTokenizer.from_pretrained(policy_path, padding_side="left")
    use_distinct_pad_token(tokenizer)
    prompts = list(dict.fromkeys(dataset["prompt"]))
    order = torch.randperm(len(prompts), generator=torch.Generator().manual_seed(config.seed))
    prompts = [prompts[i] for i in order.tolist()]
    n_eval = min(config.eval_prompts, max(0, len(prompts) - config.per_device_train_batch_size))
    eval_prompts, train_prompts = prompts[:n_eval], prompts[n_eval:]
    if len(train_prompts) < config.per_device_train_batch_size:
        raise UserError(
            f"{info.path}: {len(train_prompts)} distinct prompts; PPO needs at least "
            f"per_device_train_batch_size={config.per_device_train_batch_size}"
        )
    ids = {p: _prompt_ids(tokenizer, p, config.max_prompt_length) for p in prompts}
    train_set = Dataset.from_dict({"input_ids": [ids[p] for p in train_prompts]})
    eval_set = Dataset.from_dict({"input_ids": [ids[p] for p in eval_prompts]}) if n_eval else None

    flags = precision_flags(config.precision)
    args = PPOConfig(
        output_dir=str(output_dir),
        learning_rate=config.learning_rate,
        total_episodes=config.total_episodes,
        per_device_train_batch_size=config.per_device_train_batch_size,
        # one eval batch per rank; drop_last would drop a batch bigger than a rank's share
        per_device_eval_batch_size=max(1, n_eval // process_rank()[1]),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        num_mini_batches=config.num_mini_batches,
        num_ppo_epochs=config.num_ppo_epochs,
        response_length=config.response_length,
        stop_token="eos",
        temperature=config.temperature,
        kl_coef=config.kl_coef,
        missing_eos_penalty=config.missing_eos_penalty,
        num_sample_generations=config.num_sample_generations if n_eval else 0,
        logging_steps=config.logging_steps,
        save_strategy="no",
        report_to=report_to(config.report_to),
        seed=config.seed,
        gradient_checkpointing=config.gradient_checkpointing,
        **flags,
    )
    device = args.device
    score_dtype = "bfloat16" if flags["bf16"] else "float32"
    policy = AutoModelForCausalLM.from_pretrained(policy_path, dtype=torch.float32)
    reference = AutoModelForCausalLM.from_pretrained(policy_path, dtype=torch.float32)
    for model in (policy, reference):
        model.generation_config.pad_token_id = tokenizer.pad_token_id

    value_path = config.value_model
    if config.judge_model:
        from pipeline.judging.backends.direct import DirectScorer

        judge = resolve_model(config.judge_model)
        # the scorer runs in the training's precision: bf16 where it autocasts, else float32
        scorer = DirectScorer(judge, device=str(device), dtype=score_dtype)
        reward_model: nn.Module = TextScoreRewardModel(scorer.score, tokenizer, ids)
        reward_info: dict[str, Any] = {"kind": "direct_judge", "judge_model": judge}
    else:
        rm_path = str(Path(config.reward_model).expanduser())
        rm_tokenizer = AutoTokenizer.from_pretrained(rm_path)
        reward_info = {"kind": "reward_model", "path": rm_path, "lineage": rm_lineage}
        if _same_tokenizer(tokenizer, rm_tokenizer):
            reward_model = AutoModelForSequenceClassification.from_pretrained(rm_path, num_labels=1)
            value_path = value_path or rm_path
            reward_info["tokens"] = "shared with the policy"
        else:
            text_scorer = RewardModelTextScorer(rm_path, device, dtype=getattr(torch, score_dtype))
            reward_model = TextScoreRewardModel(text_scorer, tokenizer, ids)
            reward_info["tokens"] = "own tokenizer: responses re-tokenised as text"
    value_model = AutoModelForSequenceClassification.from_pretrained(
        value_path or policy_path, num_labels=1, dtype=torch.float32
    )
    value_model.config.pad_token_id = tokenizer.pad_token_id

    trainer = RlaifPPOTrainer(
        args=args,
        processing_class=tokenizer,
        model=policy,
        ref_model=reference,
        reward_model=reward_model,
        value_model=value_model,
        train_dataset=train_set,
        eval_dataset=eval_set,
        callbacks=[db_metrics_callback(config.job_id)],
    )
    trainer.samples_path = output_dir / "samples.jsonl"
    if config.monitors:
        is_rm = config.mode == "reward_model"
        main = process_rank()[0] == 0  # the probe is judged on rank 0 only
        judge = build_probe_judge(config.probe_judge, device) if is_rm and n_eval and main else None
        trainer.add_monitor(reward_is_model=is_rm, judge=judge)
    trainer.train()
    trainer.generate_completions(sampling=True)  # the final policy's answers

    logged = [e for e in trainer.state.log_history if "objective/kl" in e]
    last = logged[-1] if logged else {}
    metrics = {k: v for k, v in last.items() if isinstance(v, int | float)}
    metrics.update(
        updates=trainer.state.global_step, runtime_s=round(time.perf_counter() - started, 2)
    )
    policy_dir = output_dir / "policy"
    trainer.save_model(str(policy_dir))  # the main process writes; all ranks take part
    artifacts = {"policy": str(policy_dir), "samples": str(trainer.samples_path)}
    if not trainer.is_world_process_zero():  # several processes: rank 0 writes the rest
        return {"metrics": metrics, "artifacts": artifacts, "output_dir": str(output_dir)}
    tokenizer.save_pretrained(str(policy_dir))
    lineage = {
        "kind": "ppo_policy",
        "job_id": config.job_id,
        "base_policy": policy_path,
        "reward": reward_info,
        "snapshot": info.as_dict(),
        # sha256 of each prompt text (as Prompt.text_hash): `rlaif evaluate` holds these out.
        "train_prompt_hashes": sorted(sha256(p) for p in train_prompts),
        "config": config.to_dict(),
        "metrics": metrics,
    }
    write_json(policy_dir / "lineage.json", lineage)
    (policy_dir / "README.md").write_text(_model_card(config, lineage))
    write_json(output_dir / "result.json", {"metrics": metrics, "artifacts": artifacts})
    return {"metrics": metrics, "artifacts": artifacts, "output_dir": str(output_dir)}


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


def make_parser():
    from trl import TrlParser

    return TrlParser((PpoRunConfig,))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    (config,) = make_parser().parse_args_and_config(argv)
    result = train_ppo(config)
    print(f"policy saved to {result['artifacts']['policy']}")
    return result


if __name__ == "__main__":
    run_script(main)
