"""Overhead of our reward-model wrapper (pipeline.train.reward.train_reward) over plain TRL
RewardTrainer on the same data, side by side, alternating runs. Target: ratio <= 1.1.

    .venv/bin/python bench/train_reward_overhead.py [--model tiny|minilm|PATH] [--repeats 3]

Data: the bundled HH-RLHF sample (human-labelled chosen/rejected dialogues) as a snapshot. Both
sides train the same backbone for the same steps with the same held-out split and eval schedule;
ours also tokenises its own way, measures accuracy before/after and writes the model card.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def hh_snapshot(folder: Path, n: int) -> Path:
    """HH-RLHF rows -> snapshot layout: the prompt is the dialogue before the last answer."""
    rows = []
    source = ROOT / "pipeline" / "data" / "hh_rlhf_harmless_sample.jsonl"
    for i, line in enumerate(source.read_text().splitlines()[:n]):
        pair = json.loads(line)
        cut = pair["chosen"].rfind("\n\nAssistant:") + len("\n\nAssistant:")
        # Short texts, so that neither side truncates (ours) nor drops (TRL) any pair.
        prompt = pair["chosen"][:cut][-300:]
        rows.append(
            {
                "prompt": prompt,
                "chosen": pair["chosen"][cut:],
                "rejected": pair["rejected"][cut:],
                "margin": 1.0,
                "p_chosen": 1.0,
                "pair_id": f"hh-{i}",
                "label_source": "human",
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "preferences.jsonl", "w") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)
    return folder


def run_ours(config) -> float:
    from pipeline.train.reward import train_reward

    start = time.perf_counter()
    train_reward(config)
    return time.perf_counter() - start


def run_plain(config, out: Path) -> float:
    """Plain TRL: load the same rows, same split, text columns, TRL tokenises."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from pipeline.models import model_path
    from pipeline.train.common import load_snapshot

    start = time.perf_counter()
    dataset, _ = load_snapshot(config.snapshot)
    dataset = dataset.select_columns(["prompt", "chosen", "rejected"])
    split = dataset.train_test_split(test_size=config.human_eval_fraction, seed=config.seed)
    path = model_path(config.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.eos_token is None:  # BERT-like: TRL appends EOS text; give it SEP
        tokenizer.eos_token = tokenizer.sep_token
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=1, dtype=torch.float32
    )
    args = RewardConfig(
        output_dir=str(out),
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        max_length=config.max_length,
        logging_steps=config.logging_steps,
        eval_strategy="steps",
        eval_steps=config.eval_steps,
        save_strategy="no",
        report_to=[],
        gradient_checkpointing=False,
        bf16=False,
        seed=config.seed,
    )
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=split["train"],
        eval_dataset=split["test"],
        processing_class=tokenizer,
    )
    trainer.train()
    trainer.save_model(str(out / "model"))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny | minilm | a model folder")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=40)
    args = parser.parse_args()

    from pipeline.train.reward_config import RewardRunConfig

    work = Path(tempfile.mkdtemp(prefix="bench_rm_"))
    os.environ["RLAIF_HOME"] = str(work / "home")
    model = args.model
    if model == "tiny":
        from tests.helpers.tiny_models import build_reward_model

        model = str(build_reward_model(work / "tiny_rm"))
    snapshot = hh_snapshot(work / "snap", args.pairs)
    ours, plain = [], []
    for i in range(args.repeats):
        config = RewardRunConfig(
            snapshot=str(snapshot),
            model_name_or_path=model,
            output_dir=str(work / f"ours{i}"),
            max_steps=args.max_steps,
            per_device_train_batch_size=8,
            max_length=1024,
            human_eval_fraction=0.1,
            eval_steps=20,
            logging_steps=5,
            learning_rate=5e-5,
        )
        # Alternate the order so that warm caches favour neither side.
        if i % 2 == 0:
            ours.append(run_ours(config))
            plain.append(run_plain(config, work / f"plain{i}"))
        else:
            plain.append(run_plain(config, work / f"plain{i}"))
            ours.append(run_ours(config))
        print(f"run {i}: ours {ours[-1]:.2f}s  plain RewardTrainer {plain[-1]:.2f}s", flush=True)
    mo, mp = statistics.median(ours), statistics.median(plain)
    print(f"model={args.model} pairs={args.pairs} steps={args.max_steps} repeats={args.repeats}")
    print(f"median ours {mo:.2f}s  median plain {mp:.2f}s  ratio {mo / mp:.3f} (target <= 1.1)")


if __name__ == "__main__":
    main()
