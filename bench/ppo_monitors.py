"""Cost of the PPO reward-hacking / collapse monitors (pipeline/train/monitors.py) per PPO update:
the same run with monitors off and on, alternating, in one process. Target: < 5 % more.

    .venv/bin/python bench/ppo_monitors.py [--model tiny|smollm2] [--repeats 3] [--updates 8]

A reward-model run, so every monitor is on: per update, length / distinct-n / duplicates / the
reward model's score from the rollouts; at each of the run's sample points (every 4 updates,
as with the defaults: 64 episodes, 4 rollouts per update, 4 sample points; and once before
training), the probe: the reference's greedy answers (once) and the pinned judge's preference
between the policy and the reference on the held-out prompts. Timed: trainer.train() divided by
the updates (model loading excluded on both sides; the judge's loading is printed apart).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


class Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def patch(self, owner, name: str, label: str):
        original = getattr(owner, name)
        timers = self

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timers.seconds[label] = timers.seconds.get(label, 0.0) + (
                    time.perf_counter() - start
                )

        setattr(owner, name, timed)
        try:
            yield
        finally:
            setattr(owner, name, original)


def models(kind: str, folder: Path) -> tuple[str, str, str]:
    """(policy, reward model sharing its tokens, judge spec)."""
    if kind == "tiny":
        from tests.helpers.tiny_models import build_causal_lm, build_reward_model

        policy = build_causal_lm(folder / "policy")
        reward = build_reward_model(folder / "rm")
        judge = folder / "judge.yaml"
        judge.write_text(f"name: bench-tiny\nbackend: hf\nmodel: {policy}\ndevice: cpu\n")
        return str(policy), str(reward), str(judge)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from pipeline.bundled_models import smollm2_path
    from pipeline.train.common import use_distinct_pad_token

    policy = str(smollm2_path())
    tokenizer = AutoTokenizer.from_pretrained(policy)
    use_distinct_pad_token(tokenizer)
    rm = AutoModelForSequenceClassification.from_pretrained(policy, num_labels=1)
    rm.config.pad_token_id = tokenizer.pad_token_id
    rm.save_pretrained(folder / "rm")
    tokenizer.save_pretrained(folder / "rm")
    return policy, str(folder / "rm"), "default"


def one_run(args, folder: Path, policy: str, reward: str, judge: str, on: bool, tag: str):
    from pipeline.train import ppo, ppo_monitor
    from pipeline.train.ppo_config import PpoRunConfig
    from tests.helpers.train_toys import toy_rows, write_snapshot

    config = PpoRunConfig(
        snapshot=str(write_snapshot(folder / "snap", toy_rows(64))),
        policy_model=policy,
        reward_model=reward,
        probe_judge=judge,
        monitors=on,
        output_dir=str(folder / f"out-{tag}"),
        learning_rate=1e-4,
        total_episodes=args.updates * args.batch,
        per_device_train_batch_size=args.batch,
        num_ppo_epochs=2,
        response_length=args.response_length,
        eval_prompts=8,
        num_sample_generations=max(1, args.updates // 4),  # as the defaults: every 4 updates
    )
    timers = Timers()
    with (
        timers.patch(ppo.RlaifPPOTrainer, "train", "train"),
        timers.patch(ppo_monitor.PpoMonitor, "step_metrics", "per-update monitors"),
        timers.patch(ppo.RlaifPPOTrainer, "_log_probe", "probe: judge"),
        timers.patch(ppo.RlaifPPOTrainer, "_reference_answers", "probe: reference answers"),
        timers.patch(ppo, "build_probe_judge", "judge loading"),
    ):
        result = ppo.train_ppo(config)
    updates = result["metrics"]["updates"]
    return timers.seconds["train"] / updates, timers.seconds, updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", choices=["tiny", "smollm2"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--updates", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--response-length", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["RLAIF_HOME"] = str(folder / "home")
        policy, reward, judge = models(args.model, folder)
        per_update: dict[bool, list[float]] = {False: [], True: []}
        parts: list[dict[str, float]] = []
        for repeat in range(args.repeats):
            for on in (False, True):
                tag = f"{'on' if on else 'off'}-{repeat}"
                seconds, timers, updates = one_run(args, folder, policy, reward, judge, on, tag)
                per_update[on].append(seconds)
                if on:
                    parts.append(timers)
                print(f"run {tag}: {updates} updates, {seconds:.3f} s/update", flush=True)
    off, on = statistics.median(per_update[False]), statistics.median(per_update[True])
    print(
        f"\nmodel {args.model}, {args.updates} updates x {args.batch} rollouts, "
        f"{args.response_length} response tokens, load {os.getloadavg()[0]:.1f}"
    )
    print(f"PPO update, monitors off : {off:.3f} s (median of {args.repeats})")
    print(f"PPO update, monitors on  : {on:.3f} s")
    print(f"ratio on/off             : {on / off:.3f}  (target < 1.05)")
    for label in ("per-update monitors", "probe: reference answers", "probe: judge"):
        share = statistics.median(p.get(label, 0.0) / args.updates for p in parts)
        print(f"  {label:<26}: {share * 1000:.1f} ms per update ({share / off:.1%} of a step)")
    load = statistics.median(p.get("judge loading", 0.0) for p in parts)
    print(f"  judge loading (once per run, outside the steps): {load:.2f} s")


if __name__ == "__main__":
    main()
