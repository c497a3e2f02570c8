"""Reward-model training on a separable toy snapshot, in each loss mode (tiny real Llama)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.train_toys import toy_rows, write_snapshot


def _config(tmp_path, tiny_rm, loss_type, **overrides):
    from pipeline.train.reward_config import RewardRunConfig

    values = dict(
        snapshot=str(write_snapshot(tmp_path / "snap", toy_rows(60))),
        model_name_or_path=str(tiny_rm),
        output_dir=str(tmp_path / f"out-{loss_type}"),
        loss_type=loss_type,
        learning_rate=3e-3,
        num_train_epochs=4,
        per_device_train_batch_size=8,
        eval_fraction=0.25,
        human_eval_fraction=0.4,
        logging_steps=5,
        eval_steps=10,
        max_length=64,
    )
    values.update(overrides)
    return RewardRunConfig(**values)


@pytest.mark.slow
@pytest.mark.parametrize("loss_type", ["pairwise", "margin", "soft"])
def test_reward_training_raises_heldout_accuracy(tmp_path, tiny_rm, rlaif_home, loss_type):
    from pipeline.train.reward import train_reward

    result = train_reward(_config(tmp_path, tiny_rm, loss_type))
    m = result["metrics"]
    assert m["heldout_pairs"] >= 10 and m["human_heldout_pairs"] >= 3
    assert m["heldout_accuracy"] >= 0.85
    assert m["heldout_accuracy"] > m["heldout_accuracy_before"]
    assert m["human_heldout_accuracy"] >= 0.75
    model_dir = result["artifacts"]["model"]
    card = (Path(model_dir) / "README.md").read_text()
    assert "toysnap01" in card and "toy-judge-v1" in card and loss_type in card
    lineage = json.loads((Path(model_dir) / "lineage.json").read_text())
    assert lineage["snapshot"]["id"] == "toysnap01"
    assert lineage["snapshot"]["n_human"] + lineage["snapshot"]["n_ai"] == 60


def test_soft_loss_by_hand():
    import math

    import torch

    from pipeline.train.reward import soft_preference_loss

    zero = torch.tensor([0.0])
    # Equal rewards: log 2 whatever the label.
    assert soft_preference_loss(zero, zero, torch.tensor([0.9])).item() == pytest.approx(
        math.log(2)
    )
    # r_c - r_r = ln 3 gives sigmoid 0.75; with p = 0.75 the loss is the entropy of (0.75, 0.25).
    d = torch.tensor([math.log(3)])
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert soft_preference_loss(d, zero, torch.tensor([0.75])).item() == pytest.approx(expected)
    # p = 1 is the hard pairwise loss -log sigmoid(d) = log(4/3).
    assert soft_preference_loss(d, zero, torch.tensor([1.0])).item() == pytest.approx(
        math.log(4 / 3)
    )


def test_split_is_stratified_and_seeded():
    from datasets import Dataset

    from pipeline.train.reward import split_pairs
    from pipeline.train.reward_config import RewardRunConfig

    data = Dataset.from_dict({"is_human": [True] * 10 + [False] * 20, "i": list(range(30))})
    config = RewardRunConfig(snapshot="x", eval_fraction=0.1, human_eval_fraction=0.3, seed=1)
    train, held = split_pairs(data, config)
    assert sum(held["is_human"]) == 3 and len(held) == 3 + 2 and len(train) == 25
    assert set(train["i"]).isdisjoint(held["i"])
    assert split_pairs(data, config)[1]["i"] == held["i"]


def test_long_prompts_are_cut_from_the_left(tiny_rm):
    from transformers import AutoTokenizer

    from pipeline.train.reward import format_pair_ids

    tokenizer = AutoTokenizer.from_pretrained(tiny_rm)
    ids, cut = format_pair_ids(tokenizer, "why " * 200, "good answer", max_length=32)
    response = tokenizer("good answer", add_special_tokens=False)["input_ids"]
    assert cut and len(ids) == 32
    assert ids[-len(response) - 1 :] == [*response, tokenizer.eos_token_id]
    short, cut = format_pair_ids(tokenizer, "why?", "good answer", max_length=64)
    assert not cut and short[-1] == tokenizer.eos_token_id


def test_bad_snapshot_names_the_file(tmp_path):
    from pipeline.errors import InputError
    from pipeline.train.common import load_snapshot

    folder = tmp_path / "snap"
    folder.mkdir()
    (folder / "preferences.jsonl").write_text('{"prompt": "p"}\nnot json\n')
    with pytest.raises(InputError, match="preferences.jsonl: line 2"):
        load_snapshot(str(folder))
