"""The judge's numbers, checked against softmaxes computed by hand from a real tiny model's
logits (no padding, one prompt at a time), and the pure parts (order combination, batching)."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.judging.backends import hf_common, hf_forward
from pipeline.judging.base import PairInput, combine_orders
from pipeline.judging.config import JudgeConfig

PAIRS = [
    PairInput(1, "which answer is better", "a good answer", "a bad rude answer that is long"),
    PairInput(2, "explain why", "the first response is clear and short", "no"),
    PairInput(3, "how are you", "good", "bad"),
]


def last_logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1].double()


def test_label_token_probabilities_match_hand_softmax(judge):
    a_ids, b_ids = judge.label_ids["A"], judge.label_ids["B"]
    # Byte-level BPE: "A" and " A" are different tokens, both count for label A.
    assert len(a_ids) == 2 and len(b_ids) == 2
    rows = judge.judge(PAIRS)
    for pair, row in zip(PAIRS, rows, strict=True):
        expected = []
        for first, second in (
            (pair.response_a, pair.response_b),
            (pair.response_b, pair.response_a),
        ):
            logits = last_logits(judge.model, judge.encode(pair.prompt, first, second))
            exp_a = sum(math.exp(logits[t]) for t in a_ids)
            exp_b = sum(math.exp(logits[t]) for t in b_ids)
            expected.append(exp_a / (exp_a + exp_b))
        p_ab, p_a_ba = expected[0], 1 - expected[1]
        assert row.p_a_ab == pytest.approx(p_ab, abs=1e-5)
        assert row.p_a_ba == pytest.approx(p_a_ba, abs=1e-5)
        assert row.p_a == pytest.approx((p_ab + p_a_ba) / 2, abs=1e-5)
        assert row.label == ("A" if (p_ab + p_a_ba) / 2 > 0.5 else "B")
        assert row.swap_inconsistent == ((p_ab > 0.5) != (p_a_ba > 0.5))
        assert row.confidence == pytest.approx(max(row.p_a, 1 - row.p_a))


def test_only_last_position_logits_are_computed(judge):
    seen = []
    handle = judge.model.lm_head.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    try:
        judge.judge(PAIRS[:2])
    finally:
        handle.remove()
    assert seen and all(shape[1] == 1 for shape in seen)


def test_combine_orders_by_hand():
    row = combine_orders(0.8, 0.3, pair_id=1)  # A first: A; A second: B -> inconsistent
    assert row.p_a == pytest.approx(0.55)
    assert row.label == "A" and row.swap_inconsistent is True
    assert row.confidence == pytest.approx(0.55)
    row = combine_orders(0.2, 0.3, pair_id=1)
    assert row.p_a == pytest.approx(0.25) and row.label == "B"
    assert row.swap_inconsistent is False and row.confidence == pytest.approx(0.75)
    assert combine_orders(0.56, 0.5, tie_band=0.05, pair_id=1).label == "tie"
    assert combine_orders(0.56, 0.5, tie_band=0.01, pair_id=1).label == "A"
    assert combine_orders(0.5, 0.5, pair_id=1).label == "B"  # A only when p > 0.5


def test_make_batches_respects_token_budget():
    lengths = [5, 50, 20, 20, 49, 3]
    batches = hf_forward.make_batches(lengths, 100)
    assert sorted(i for b in batches for i in b) == list(range(6))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert longest * len(batch) <= 100
        assert [lengths[i] for i in batch] == sorted((lengths[i] for i in batch), reverse=True)
    assert hf_forward.make_batches([500], 100) == [[0]]  # too long still runs, alone


def _tokenizer(vocab: list[str], pre_tokenizer, decoder=None):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizer
    if decoder is not None:
        tokenizer.decoder = decoder
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>")


def test_label_lookup_with_leading_space_tokens(tiny_lm):
    tokenizer = hf_common.load_tokenizer(str(tiny_lm))
    a, a_space = (
        tokenizer.encode("A", add_special_tokens=False),
        tokenizer.encode(" A", add_special_tokens=False),
    )
    assert len(a) == len(a_space) == 1 and a != a_space
    assert hf_common.label_token_ids(tokenizer, "A") == [a[0], a_space[0]]
    # A multi-token label is found by its first token, in both spellings.
    first = tokenizer.encode("tie", add_special_tokens=False)[0]
    first_space = tokenizer.encode(" tie", add_special_tokens=False)[0]
    assert hf_common.label_token_ids(tokenizer, "tie") == [first, first_space]


def test_label_lookup_without_leading_space_tokens():
    from tokenizers import pre_tokenizers

    # Space is a token of its own: " A" = [" ", "A"]; the bare space says nothing and is skipped.
    vocab = ["<unk>", "<pad>", " ", "A", "B", "1", "0"]
    split = pre_tokenizers.Split(pattern=" ", behavior="isolated")
    tokenizer = _tokenizer(vocab, split)
    assert tokenizer.encode(" A", add_special_tokens=False) == [2, 3]
    assert hf_common.label_token_ids(tokenizer, "A") == [3]
    assert hf_common.label_token_ids(tokenizer, "B") == [4]
    # Such a tokenizer gets the space into the prompt, so the label is read at the right place.
    assert hf_common.cue_suffix(tokenizer, ["A", "B"], "Answer:") == " "
    assert hf_common.cue_suffix(tokenizer, ["A", "B"], "Answer: ") == ""


def test_label_lookup_sentencepiece_style_spellings_collapse():
    from tokenizers import decoders, pre_tokenizers

    # Metaspace: "A" and " A" both become "▁A": one token, counted once.
    vocab = ["<unk>", "<pad>", "▁A", "▁B", "A", "B"]
    tokenizer = _tokenizer(vocab, pre_tokenizers.Metaspace(), decoders.Metaspace())
    assert hf_common.label_token_ids(tokenizer, "A") == [2]
    hf_common.check_disjoint({"A": [2], "B": [3]})
    with pytest.raises(Exception, match="same token"):
        hf_common.check_disjoint({"A": [2], "B": [2, 3]})


def test_direct_score_matches_hand_computed_digit_probabilities(tiny_lm):
    from pipeline.judging.backends.direct import DirectScorer

    scorer = DirectScorer(str(tiny_lm), device="cpu", max_batch_tokens=200)
    tokenizer = scorer.tokenizer
    digit = {k: tokenizer.encode(str(k), add_special_tokens=False)[0] for k in range(10)}
    # This tokenizer has no "10" token: 10 is "1" then "0", scored after an appended "1".
    assert not scorer.ten_is_token and scorer.one_id == digit[1]
    prompts = ["rate this answer", "how good is it"]
    responses = ["the answer is helpful and kind", "bad"]
    results = scorer.score_detailed(prompts, responses)
    for prompt, response, result in zip(prompts, responses, results, strict=True):
        ids = scorer.encode(prompt, response)
        assert ids[-1] == digit[1]
        probs_answer = torch.softmax(last_logits(scorer.model, ids[:-1]), -1)
        p_zero_after_one = torch.softmax(last_logits(scorer.model, ids), -1)[digit[0]].item()
        mass = {k: probs_answer[digit[k]].item() for k in range(1, 10)}
        mass[10] = mass[1] * p_zero_after_one
        mass[1] = mass[1] * (1 - p_zero_after_one)
        total = sum(mass.values())
        probs = [mass[k] / total for k in range(1, 11)]
        rating = sum(k * p for k, p in zip(range(1, 11), probs, strict=True))
        assert result.digit_probs == pytest.approx(probs, abs=1e-5)
        assert result.expected_rating == pytest.approx(rating, abs=1e-4)
        assert result.score == pytest.approx((rating - 1) / 4.5 - 1, abs=1e-4)
        assert -1 <= result.score <= 1
    assert scorer.score(prompts, responses) == pytest.approx([r.score for r in results])


def test_reward_model_judge_is_sigmoid_of_reward_difference(tiny_rm):
    from pipeline.judging.backends.reward_model import RewardModelJudge

    judge = RewardModelJudge(
        JudgeConfig(backend="reward_model", model=str(tiny_rm), device="cpu", max_batch_tokens=64)
    )
    rows = judge.judge(PAIRS)
    for pair, row in zip(PAIRS, rows, strict=True):
        rewards = []
        for response in (pair.response_a, pair.response_b):
            with torch.no_grad():
                ids = torch.tensor([judge.encode(pair.prompt, response)])
                rewards.append(judge.model(ids).logits[0, 0].item())
        p = 1 / (1 + math.exp(-(rewards[0] - rewards[1])))
        assert row.p_a == pytest.approx(p, abs=1e-5)
        assert row.swap_inconsistent is False
    assert judge.identity.confidence_kind == "reward_model"


def test_rationale_mode_scores_after_the_generated_rationale(tiny_lm):
    from pipeline.judging.backends.hf_logprob import HfLogprobJudge

    config = JudgeConfig(
        model=str(tiny_lm),
        device="cpu",
        template="pairwise_rationale",
        rationale=True,
        rationale_max_tokens=5,
    )
    judge = HfLogprobJudge(config)
    assert judge.identity.params["rationale"] is True
    [row] = judge.judge(PAIRS[:1])
    assert row.rationale.startswith("[A shown first] ") and "[B shown first] " in row.rationale
    # Rebuild the A-first sequence by hand: prompt + rationale cue, greedy tokens, answer cue.
    pair = PAIRS[0]
    rendered = judge.template.render(
        prompt=pair.prompt, response_a=pair.response_a, response_b=pair.response_b
    )
    base = hf_common.Rendered(rendered.text, rendered.rationale_cue, "")
    ids = hf_common.prompt_ids(judge.tokenizer, base)
    with torch.no_grad():
        out = judge.model.generate(
            torch.tensor([ids]),
            max_new_tokens=5,
            do_sample=False,
            pad_token_id=judge.tokenizer.pad_token_id,
        )[0, len(ids) :].tolist()
    eos = judge.tokenizer.eos_token_id
    thought = out[: out.index(eos)] if eos in out else out
    cue = judge.tokenizer.encode(rendered.answer_cue + judge.suffix, add_special_tokens=False)
    logits = last_logits(judge.model, ids + thought + cue)
    exp_a = sum(math.exp(logits[t]) for t in judge.label_ids["A"])
    exp_b = sum(math.exp(logits[t]) for t in judge.label_ids["B"])
    assert row.p_a_ab == pytest.approx(exp_a / (exp_a + exp_b), abs=1e-5)
