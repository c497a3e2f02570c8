"""Configuration of a reward-model run: parsed from YAML and/or flags (HfArgumentParser style)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

LOSS_TYPES = ("pairwise", "margin", "soft")


@dataclass
class RewardRunConfig:
    """One reward-model run. Defaults suit the bundled MiniLM backbone on a CPU."""

    snapshot: str = field(
        default="",
        metadata={"help": "Export snapshot: its folder, or its id (looked up in the database)."},
    )
    model_name_or_path: str = field(
        default="minilm",
        metadata={
            "help": "Backbone: a model folder, or 'minilm' / 'smollm2' for the bundled models. "
            "To use the reward model in PPO without re-tokenising, train on the policy's model."
        },
    )
    output_dir: str | None = field(
        default=None,
        metadata={"help": "New folder for the model (default: a fresh one under RLAIF_HOME/runs)."},
    )
    loss_type: Literal["pairwise", "margin", "soft"] = field(
        default="pairwise",
        metadata={
            "help": "pairwise: -log s(r_c - r_r); margin: -log s(r_c - r_r - m), m from the "
            "snapshot's confidence margin; soft: cross-entropy on p_chosen (Lee et al. 2023)."
        },
    )
    margin_scale: float = field(default=1.0, metadata={"help": "Multiplies the margin column."})
    eval_fraction: float = field(
        default=0.1, metadata={"help": "Share of AI-labelled pairs held out for evaluation."}
    )
    human_eval_fraction: float = field(
        default=0.3,
        metadata={
            "help": "Share of human-labelled pairs held out: accuracy on them is the number "
            "users trust, so they get a larger share than the AI-labelled pairs."
        },
    )
    learning_rate: float = field(default=5e-5, metadata={"help": "AdamW learning rate."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Passes over the data."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many steps (-1: off)."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Pairs per step."})
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "Pairs per eval step."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Accumulated steps."})
    max_length: int = field(
        default=512,
        metadata={"help": "Tokens per sequence; longer prompts are cut from the left."},
    )
    logging_steps: int = field(default=5, metadata={"help": "Log every N steps."})
    eval_steps: int = field(default=25, metadata={"help": "Evaluate the held-out split every N."})
    center_rewards_coefficient: float | None = field(
        default=None, metadata={"help": "Pull rewards towards zero mean (0.01 is usual)."}
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Trade compute for memory (GPU, big models)."}
    )
    precision: Literal["auto", "fp32", "bf16"] = field(
        default="auto", metadata={"help": "auto: bf16 on a GPU that supports it, else fp32."}
    )
    report_to: str = field(
        default="none", metadata={"help": "'none' or 'tensorboard' (logs under output_dir/runs)."}
    )
    seed: int = field(default=42, metadata={"help": "Seed for the split, the head and the data."})
    eval_before_training: bool = field(
        default=True, metadata={"help": "Also measure accuracy before training, for comparison."}
    )
    job_id: int | None = field(
        default=None, metadata={"help": "Training job row to stream metrics into (set by jobs)."}
    )

    def __post_init__(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, not {self.loss_type!r}")
        for name in ("eval_fraction", "human_eval_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), not {value}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
