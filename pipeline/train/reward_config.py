"""Configuration of a reward-model run, declared once (see pipeline/train/config.py): the CLI
options, the TRL RewardConfig arguments and the Training page's widgets come from these fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from pipeline.train.config import Widget, check_choices, check_models, setting

LOSS_TYPES = ("pairwise", "margin", "soft")


@dataclass
class RewardRunConfig:
    """One reward-model run. Defaults suit the bundled MiniLM backbone on a CPU."""

    snapshot: str = setting(
        "", "Export snapshot: its folder, or its id (looked up in the database)."
    )
    model_name_or_path: str = setting(
        "bundled:minilm",
        "Backbone: bundled:minilm (fast), bundled:smollm2 (shares the policy's tokens), a model "
        "folder or a hub id in the local cache. To use the reward model in PPO without "
        "re-tokenising, train on the policy's model.",
        flags=("--model",),
        widget=Widget("Backbone", "rm_model"),
    )
    output_dir: str | None = setting(
        None, "New folder for the model (default: a fresh one under RLAIF_HOME/runs)."
    )
    loss_type: Literal["pairwise", "margin", "soft"] = setting(
        "pairwise",
        "pairwise: -log s(r_c - r_r); margin: -log s(r_c - r_r - m), m from the snapshot's "
        "confidence margin; soft: cross-entropy on p_chosen (Lee et al. 2023).",
        widget=Widget("Loss", "rm_loss"),
    )
    margin_scale: float = setting(1.0, "Multiplies the margin column.")
    eval_fraction: float = setting(0.1, "Share of AI-labelled pairs held out for evaluation.")
    human_eval_fraction: float = setting(
        0.3,
        "Share of human-labelled pairs held out: accuracy on them is the number users trust, "
        "so they get a larger share than the AI-labelled pairs.",
    )
    num_train_epochs: float = setting(
        1.0,
        "Passes over the data.",
        trl=True,
        flags=("--epochs",),
        widget=Widget("Epochs", "rm_epochs", 0.1, 50.0),
    )
    learning_rate: float = setting(
        5e-5,
        "AdamW learning rate.",
        trl=True,
        flags=("--lr",),
        widget=Widget("Learning rate", "rm_lr", 1e-7, 1e-1, "%.1e"),
    )
    per_device_train_batch_size: int = setting(
        8,
        "Pairs per step.",
        trl=True,
        flags=("--batch-size",),
        widget=Widget("Batch size", "rm_batch", 1, 256),
    )
    per_device_eval_batch_size: int = setting(16, "Pairs per eval step.", trl=True)
    gradient_accumulation_steps: int = setting(1, "Accumulated steps.", trl=True)
    max_length: int = setting(
        512,
        "Tokens per sequence; longer prompts are cut from the left.",
        trl=True,
        widget=Widget("Max tokens", "rm_len", 16, 8192),
    )
    max_steps: int = setting(
        -1,
        "Stop after this many steps (-1: off).",
        trl=True,
        widget=Widget("Max steps (-1: off)", "rm_steps", -1, 10**6),
    )
    logging_steps: int = setting(5, "Log every N steps.", trl=True)
    eval_steps: int = setting(25, "Evaluate the held-out split every N.", trl=True)
    center_rewards_coefficient: float | None = setting(
        None, "Pull rewards towards zero mean (0.01 is usual).", trl=True
    )
    gradient_checkpointing: bool = setting(
        False, "Trade compute for memory (GPU, big models).", trl=True
    )
    precision: Literal["auto", "fp32", "bf16"] = setting(
        "auto", "auto: bf16 on a GPU that supports it, else fp32."
    )
    report_to: str = setting(
        "none",
        "'none' or 'tensorboard' (logs under output_dir/runs).",
        widget=Widget("Report to", "rm_report", options=("none", "tensorboard")),
    )
    seed: int = setting(42, "Seed for the split, the head and the data.", trl=True)
    eval_before_training: bool = setting(
        True, "Also measure accuracy before training, for comparison."
    )
    job_id: int | None = setting(
        None, "Training job row to stream metrics into (set by jobs).", cli=False
    )

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("eval_fraction", "human_eval_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), not {value}")
        check_models(self, ("model_name_or_path",))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
