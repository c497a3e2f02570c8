"""Configuration of a PPO run (trl.experimental.ppo), parsed from YAML and/or flags."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass
class PpoRunConfig:
    """One PPO run. Reward: a trained reward model, or (d-RLAIF) a judge's direct 1-10 score."""

    snapshot: str = field(
        default="",
        metadata={
            "help": "Snapshot (folder or id) whose prompts PPO samples on. Default: the "
            "reward model's snapshot, from its lineage.json."
        },
    )
    policy_model: str = field(
        default="smollm2", metadata={"help": "Policy: a causal LM folder, or 'smollm2'."}
    )
    reward_model: str | None = field(
        default=None,
        metadata={
            "help": "Trained reward model folder (rlaif train reward). If its tokenizer "
            "differs from the policy's, responses are re-tokenised as text."
        },
    )
    judge_model: str | None = field(
        default=None,
        metadata={
            "help": "d-RLAIF: a causal LM judge folder (or 'smollm2') whose expected 1-10 "
            "rating, rescaled to [-1, 1], is the reward. Excludes reward_model."
        },
    )
    value_model: str | None = field(
        default=None,
        metadata={
            "help": "Value model init. Default: the reward model when it shares the "
            "policy's tokenizer, else the policy with a fresh value head."
        },
    )
    output_dir: str | None = field(default=None, metadata={"help": "New folder for the policy."})
    learning_rate: float = field(default=3e-6, metadata={"help": "AdamW learning rate."})
    total_episodes: int = field(default=64, metadata={"help": "Prompts sampled in all."})
    per_device_train_batch_size: int = field(default=4, metadata={"help": "Rollouts per step."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Accumulated steps."})
    num_mini_batches: int = field(default=1, metadata={"help": "Minibatches per rollout batch."})
    num_ppo_epochs: int = field(default=2, metadata={"help": "PPO epochs per rollout batch."})
    response_length: int = field(default=48, metadata={"help": "Max new tokens per response."})
    max_prompt_length: int = field(
        default=256, metadata={"help": "Prompt tokens kept (cut from the left)."}
    )
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature."})
    kl_coef: float = field(default=0.05, metadata={"help": "KL penalty towards the reference."})
    missing_eos_penalty: float | None = field(
        default=1.0, metadata={"help": "Subtracted from the score of responses without EOS."}
    )
    eval_prompts: int = field(
        default=8, metadata={"help": "Held-out prompts used for the sample completions."}
    )
    num_sample_generations: int = field(
        default=4, metadata={"help": "How often (over the run) sample completions are logged."}
    )
    judge_batch_size: int = field(default=8, metadata={"help": "Responses per judge forward."})
    monitors: bool = field(
        default=True,
        metadata={"help": "Log length, distinct-n and duplicate monitors of the samples."},
    )
    probe_judge: str | None = field(
        default="default",
        metadata={
            "help": "Reward-model runs: pairwise judge (preset or judge config file) that "
            "compares the policy with the reference on the held-out prompts at each sample "
            "point. Empty: no judge."
        },
    )
    logging_steps: int = field(default=1, metadata={"help": "Log every N PPO updates."})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "GPU, big models."})
    precision: Literal["auto", "fp32", "bf16"] = field(
        default="auto", metadata={"help": "auto: bf16 on a GPU that supports it, else fp32."}
    )
    report_to: str = field(default="none", metadata={"help": "'none' or 'tensorboard'."})
    seed: int = field(default=42, metadata={"help": "Seed."})
    job_id: int | None = field(default=None, metadata={"help": "Training job row (jobs sets)."})

    def __post_init__(self) -> None:
        if bool(self.reward_model) == bool(self.judge_model):
            raise ValueError("give exactly one of reward_model or judge_model (d-RLAIF)")
        if self.per_device_train_batch_size < 2:
            raise ValueError("per_device_train_batch_size must be at least 2 (advantage whitening)")

    @property
    def mode(self) -> str:
        return "direct_judge" if self.judge_model else "reward_model"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
