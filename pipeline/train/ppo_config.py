"""Configuration of a PPO run (trl.experimental.ppo), declared once (see pipeline/train/config.py):
the CLI options, the TRL PPOConfig arguments and the Training page's widgets come from these
fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from pipeline.train.config import Widget, check_choices, check_models, setting

MODEL_FIELDS = ("policy_model", "reward_model", "judge_model", "value_model")


@dataclass
class PpoRunConfig:
    """One PPO run. Reward: a trained reward model, or (d-RLAIF) a judge's direct 1-10 score."""

    snapshot: str = setting(
        "",
        "Snapshot (folder or id) whose prompts PPO samples on. Default: the reward model's "
        "snapshot, from its lineage.json.",
    )
    policy_model: str = setting(
        "bundled:smollm2",
        "Policy: bundled:smollm2, a causal LM folder or a hub id in the local cache.",
        flags=("--policy",),
        widget=Widget("Policy", "ppo_policy"),
    )
    reward_model: str | None = setting(
        None,
        "Trained reward model folder (rlaif train reward). If its tokenizer differs from the "
        "policy's, responses are re-tokenised as text.",
    )
    judge_model: str | None = setting(
        None,
        "d-RLAIF: a causal LM judge (bundled:smollm2, a folder or a hub id) whose expected 1-10 "
        "rating, rescaled to [-1, 1], is the reward. Excludes reward_model.",
        widget=Widget("Judge model", "ppo_judge"),
    )
    value_model: str | None = setting(
        None,
        "Value model init. Default: the reward model when it shares the policy's tokenizer, "
        "else the policy with a fresh value head.",
    )
    output_dir: str | None = setting(None, "New folder for the policy.")
    total_episodes: int = setting(
        64,
        "Prompts sampled in all.",
        trl=True,
        flags=("--episodes",),
        widget=Widget("Episodes", "ppo_episodes", 2, 10**6),
    )
    learning_rate: float = setting(
        3e-6,
        "AdamW learning rate.",
        trl=True,
        flags=("--lr",),
        widget=Widget("Learning rate", "ppo_lr", 1e-8, 1e-2, "%.1e"),
    )
    per_device_train_batch_size: int = setting(
        4,
        "Rollouts per step.",
        trl=True,
        widget=Widget("Batch size", "ppo_batch", 2, 256),
    )
    gradient_accumulation_steps: int = setting(1, "Accumulated steps.", trl=True)
    num_mini_batches: int = setting(1, "Minibatches per rollout batch.", trl=True)
    num_ppo_epochs: int = setting(2, "PPO epochs per rollout batch.", trl=True)
    response_length: int = setting(
        48,
        "Max new tokens per response.",
        trl=True,
        widget=Widget("Response tokens", "ppo_len", 4, 2048),
    )
    max_prompt_length: int = setting(256, "Prompt tokens kept (cut from the left).")
    temperature: float = setting(0.7, "Sampling temperature.", trl=True)
    kl_coef: float = setting(
        0.05,
        "KL penalty towards the reference.",
        trl=True,
        widget=Widget("KL coefficient", "ppo_kl", 0.0, 10.0),
    )
    missing_eos_penalty: float | None = setting(
        1.0, "Subtracted from the score of responses without EOS.", trl=True
    )
    eval_prompts: int = setting(8, "Held-out prompts used for the sample completions.")
    num_sample_generations: int = setting(
        4, "How often (over the run) sample completions are logged.", trl=True
    )
    judge_batch_size: int = setting(8, "Responses per judge forward.")
    monitors: bool = setting(True, "Log length, distinct-n and duplicate monitors of the samples.")
    probe_judge: str | None = setting(
        "default",
        "Reward-model runs: pairwise judge (preset or judge config file) that compares the "
        "policy with the reference on the held-out prompts at each sample point. Empty: no judge.",
    )
    logging_steps: int = setting(1, "Log every N PPO updates.", trl=True)
    gradient_checkpointing: bool = setting(False, "GPU, big models.", trl=True)
    precision: Literal["auto", "fp32", "bf16"] = setting(
        "auto", "auto: bf16 on a GPU that supports it, else fp32."
    )
    report_to: str = setting("none", "'none' or 'tensorboard'.")
    seed: int = setting(42, "Seed.", trl=True)
    job_id: int | None = setting(None, "Training job row (jobs sets).", cli=False)

    def __post_init__(self) -> None:
        check_choices(self)
        if bool(self.reward_model) == bool(self.judge_model):
            raise ValueError("give exactly one of reward_model or judge_model (d-RLAIF)")
        if self.per_device_train_batch_size < 2:
            raise ValueError("per_device_train_batch_size must be at least 2 (advantage whitening)")
        check_models(self, MODEL_FIELDS)

    @property
    def mode(self) -> str:
        return "direct_judge" if self.judge_model else "reward_model"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
