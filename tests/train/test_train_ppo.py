"""PPO with tiny real models: a reward model sharing the policy's tokens, and d-RLAIF with a tiny
causal LM as the direct judge. Asserts that training changed the policy's parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.train_toys import toy_rows, write_snapshot


def _run(tmp_path, tiny_lm, **reward):
    from pipeline.train.ppo import train_ppo
    from pipeline.train.ppo_config import PpoRunConfig

    config = PpoRunConfig(
        snapshot=str(write_snapshot(tmp_path / "snap", toy_rows(16))),
        policy_model=str(tiny_lm),
        output_dir=str(tmp_path / "out"),
        learning_rate=1e-3,
        total_episodes=8,
        per_device_train_batch_size=4,
        num_ppo_epochs=1,
        response_length=8,
        eval_prompts=4,
        num_sample_generations=1,
        **reward,
    )
    return train_ppo(config)


def _changed(before: Path, after: Path) -> int:
    from safetensors.torch import load_file

    old, new = load_file(before / "model.safetensors"), load_file(after / "model.safetensors")
    assert old.keys() == new.keys()
    return sum(not old[k].equal(new[k]) for k in old)


@pytest.mark.slow
def test_ppo_with_reward_model_changes_the_policy(tmp_path, tiny_lm, tiny_rm, rlaif_home):
    result = _run(tmp_path, tiny_lm, reward_model=str(tiny_rm))
    policy = Path(result["artifacts"]["policy"])
    assert _changed(tiny_lm, policy) > 0
    m = result["metrics"]
    assert m["updates"] == 2
    for name in ("objective/kl", "objective/entropy", "objective/scores"):
        assert name in m
    samples = [json.loads(x) for x in Path(result["artifacts"]["samples"]).read_text().splitlines()]
    assert samples and {"query", "response", "score"} <= samples[0].keys()
    lineage = json.loads((policy / "lineage.json").read_text())
    assert lineage["reward"]["kind"] == "reward_model"
    assert lineage["reward"]["tokens"] == "shared with the policy"
    assert lineage["snapshot"]["id"] == "toysnap01"
    # The prompts PPO trained on (16 distinct, 4 held out for samples), for `rlaif evaluate`.
    from pipeline.ingest.records import sha256

    rows = toy_rows(16)
    assert len(lineage["train_prompt_hashes"]) == 12
    assert set(lineage["train_prompt_hashes"]) < {sha256(r["prompt"]) for r in rows}


@pytest.mark.slow
def test_d_rlaif_with_a_tiny_real_judge(tmp_path, tiny_lm, rlaif_home):
    result = _run(tmp_path, tiny_lm, judge_model=str(tiny_lm))
    policy = Path(result["artifacts"]["policy"])
    assert _changed(tiny_lm, policy) > 0
    # The judge's rescaled rating lies in [-1, 1]; missing EOS costs 1 more.
    samples = [json.loads(x) for x in Path(result["artifacts"]["samples"]).read_text().splitlines()]
    assert all(-2.0 <= s["score"] <= 1.0 for s in samples)
    lineage = json.loads((policy / "lineage.json").read_text())
    assert lineage["reward"] == {"kind": "direct_judge", "judge_model": str(tiny_lm)}


def test_text_score_reward_model_splits_prompt_and_response(tiny_lm):
    import torch
    from transformers import AutoTokenizer

    from pipeline.train.ppo import TextScoreRewardModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm, padding_side="left")
    seen = []

    def scorer(prompts, responses):
        seen.extend(zip(prompts, responses, strict=True))
        return [float(len(r)) for r in responses]

    prompt_ids = {"why?": tokenizer("why?")["input_ids"], "how?": tokenizer("how ?")["input_ids"]}
    model = TextScoreRewardModel(scorer, tokenizer, prompt_ids)
    pad = tokenizer.pad_token_id
    answer = tokenizer("good", add_special_tokens=False)["input_ids"]
    row1 = [pad, *prompt_ids["why?"], *answer]
    row2 = [*prompt_ids["how?"], *answer, pad][: len(row1)]
    ids = torch.tensor([row1, row2 + [pad] * (len(row1) - len(row2))])

    out = model.backbone(input_ids=ids, attention_mask=ids != pad)
    assert [p for p, _ in seen] == ["why?", "how?"]
    assert seen[0][1] == "good"
    assert out.hidden_states[-1].shape == (2, len(row1), 1)
    assert out.hidden_states[-1][0, -1, 0].item() == len("good")


@pytest.mark.slow  # converts the bundled SmolLM2 (~30 s), then 2 PPO updates (~40 s)
def test_ppo_with_the_bundled_smollm2_as_policy_and_judge(tmp_path, rlaif_home):
    """The README's default path: SmolLM2 (chat template, pad token = its EOS <|im_end|>) as the
    policy and as the d-RLAIF judge. The run swaps in a distinct pad token, else TRL's PPO would
    treat every <|im_end|> inside a chat prompt as padding."""
    from transformers import AutoTokenizer

    from pipeline.train.ppo import train_ppo
    from pipeline.train.ppo_config import PpoRunConfig

    result = train_ppo(
        PpoRunConfig(
            snapshot=str(write_snapshot(tmp_path / "snap", toy_rows(8))),
            policy_model="smollm2",
            judge_model="smollm2",
            output_dir=str(tmp_path / "out"),
            learning_rate=1e-4,
            total_episodes=4,
            per_device_train_batch_size=2,
            num_ppo_epochs=1,
            response_length=8,
            eval_prompts=2,
            num_sample_generations=1,
        )
    )
    assert result["metrics"]["updates"] == 2
    policy = Path(result["artifacts"]["policy"])
    from pipeline.bundled_models import smollm2_path

    assert _changed(smollm2_path(), policy) > 0
    tokenizer = AutoTokenizer.from_pretrained(policy)
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.eos_token == "<|im_end|>"
    samples = [json.loads(x) for x in Path(result["artifacts"]["samples"]).read_text().splitlines()]
    assert samples and all(-2.0 <= s["score"] <= 1.0 for s in samples)
