"""The judge's prefix tree (preamble once per call, a pair's shared start once per pair) gives
the same numbers as scoring every sequence alone, and long inputs are cut where it does least
harm (the start of the prompt, then the ends of the responses), alike in both orders."""

from __future__ import annotations

import pytest
import torch

from pipeline.judging.backends import hf_common, hf_forward
from pipeline.judging.base import PairInput
from pipeline.judging.config import JudgeConfig

LONG_TALK = " ".join(f"turn {i} the user asks about the weather and the answer" for i in range(40))
PAIRS = [
    PairInput(1, "which answer is better", "a good answer", "a bad rude answer that is long"),
    PairInput(2, "explain why " * 9, "the first response is clear and short", "no"),
    PairInput(3, "how are you", "good", "bad"),
    PairInput(4, "", "same start but then this", "same start but then that one"),
]


def alone(model, sequences, tokens) -> torch.Tensor:
    """Each sequence scored by itself: no padding, no cache, nothing shared."""
    rows = []
    with torch.no_grad():
        for ids in sequences:
            logits = model(torch.tensor([ids])).logits[0, -1].float()
            rows.append(torch.log_softmax(logits, -1)[tokens])
    return torch.stack(rows)


def both_orders(judge, pairs):
    ab, ba = zip(*(judge.encode_pair(p) for p in pairs), strict=True)
    n = len(pairs)
    return [*ab, *ba], [(i, n + i) for i in range(n)]


def test_shared_prefix_length_leaves_tokens_to_score():
    assert hf_forward.shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert hf_forward.shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2  # one token left to score
    assert hf_forward.shared_prefix_length([[1, 2, 3], [1, 2, 3]], keep=2) == 1
    assert hf_forward.shared_prefix_length([[7], [8]]) == 0


def test_the_preamble_and_each_pairs_start_are_shared(judge):
    sequences, groups = both_orders(judge, PAIRS)
    preamble = hf_forward.shared_prefix_length(sequences)
    assert preamble >= hf_forward.MIN_SHARED_PREFIX  # the template's system prompt and rubric
    assert any(s[preamble] != sequences[0][preamble] for s in sequences)  # and it is the longest
    trees, flat = hf_forward._plan(sequences, groups, preamble, keep=1)
    # Every pair's orders share the conversation before Response A; none runs flat.
    assert flat == [] and len(trees) == len(PAIRS)
    ab, ba = sequences[1], sequences[len(PAIRS) + 1]  # pair 2: a long prompt
    split = hf_forward.shared_prefix_length([ab, ba])
    assert trees[1].stem == ab[preamble:split] and trees[1].tails == [ab[split:], ba[split:]]
    assert len(trees[1].stem) > 20


@pytest.mark.parametrize("budget", [64, 300, 100_000])
def test_tree_scoring_equals_each_sequence_alone(judge, budget):
    sequences, groups = both_orders(judge, PAIRS)
    # A sequence outside any group, and a group of three, run beside the pairs.
    sequences.append(judge.encode("another prompt", "x", "y"))
    groups.append((0, 2, 4))
    tokens = list(judge.token_ids)
    kwargs = dict(pad_id=judge.tokenizer.pad_token_id, max_batch_tokens=budget)
    tree = hf_forward.last_position_logprobs(
        judge.model, sequences, tokens, groups=groups[1:], **kwargs
    )
    whole = hf_forward.last_position_logprobs(
        judge.model, sequences, tokens, share_prefix=False, **kwargs
    )
    expected = alone(judge.model, sequences, tokens)
    assert torch.allclose(tree[:, -1], expected, atol=1e-5)
    assert torch.allclose(whole[:, -1], expected, atol=1e-5)


def test_tree_scoring_keeps_the_last_two_positions(judge):
    """keep=2 (the direct scorer's "1","0" for a rating of 10): both positions match."""
    sequences, groups = both_orders(judge, PAIRS[:2])
    tokens = list(judge.token_ids)
    got = hf_forward.last_position_logprobs(
        judge.model,
        sequences,
        tokens,
        pad_id=judge.tokenizer.pad_token_id,
        max_batch_tokens=300,
        keep=2,
        groups=groups,
    )
    with torch.no_grad():
        for row, ids in zip(got, sequences, strict=True):
            logits = judge.model(torch.tensor([ids])).logits[0, -2:].float()
            assert torch.allclose(row, torch.log_softmax(logits, -1)[:, tokens], atol=1e-5)


def test_water_level_by_hand():
    # Cut [10, 4] by 5: cap 5 removes 5 (from the 10), cap 6 only 4.
    assert hf_common._water_level([10, 4], 5) == 5
    # Cut [10, 10] by 6: cap 7 removes 3 + 3.
    assert hf_common._water_level([10, 10], 6) == 7
    assert hf_common._water_level([3, 2], 100) == 0


def test_long_prompt_loses_its_start_and_keeps_the_preamble(judge, tiny_lm):
    from pipeline.judging.backends.hf_logprob import HfLogprobJudge

    limit = len(judge.encode("", "", "")) + 40  # the template alone, plus 40 tokens of text
    short = HfLogprobJudge(
        JudgeConfig(model=str(tiny_lm), device="cpu", max_length=limit),
        model=judge.model,
        tokenizer=judge.tokenizer,
    )
    pair = PairInput(9, LONG_TALK + " last question here", "answer one", "answer two")
    (ab, ba), prompt, responses = short.fit_pair(pair)
    whole_ab = short.encode(pair.prompt, pair.response_a, pair.response_b)
    assert len(whole_ab) > limit >= max(len(ab), len(ba))
    assert len(ab) >= limit - 12  # cut by about the excess, not much more
    assert prompt.startswith(hf_common.CUT_MARK) and prompt.endswith("last question here")
    assert responses == [pair.response_a, pair.response_b]  # the responses stay whole
    preamble = hf_forward.shared_prefix_length([whole_ab, ab])
    empty = short.encode("", "", "")
    assert preamble >= hf_forward.shared_prefix_length([empty, whole_ab])  # preamble kept
    assert ab[-3:] == whole_ab[-3:]  # the answer cue is still last
    assert short.identity.params["truncation"] == "prompt-start-then-response-ends"


def test_long_responses_lose_their_ends_alike_in_both_orders(judge, tiny_lm):
    from pipeline.judging.backends.hf_logprob import HfLogprobJudge

    limit = len(judge.encode("", "", "")) + 40
    short = HfLogprobJudge(
        JudgeConfig(model=str(tiny_lm), device="cpu", max_length=limit),
        model=judge.model,
        tokenizer=judge.tokenizer,
    )
    pair = PairInput(9, "short prompt", LONG_TALK, "a short answer")
    (ab, ba), prompt, (first, second) = short.fit_pair(pair)
    assert max(len(ab), len(ba)) <= limit
    assert prompt == hf_common.CUT_MARK  # the prompt went first
    assert first.startswith("turn 0 the user") and first.endswith(hf_common.CUT_MARK)
    assert second == "a short answer"  # only the long response is cut
    # The B-first order shows the same cut texts, swapped.
    assert ba == short.encode(prompt, second, first)


def test_a_cache_that_cannot_be_copied_per_member_falls_back_to_whole_sequences(judge, monkeypatch):
    sequences, groups = both_orders(judge, PAIRS)
    tokens = list(judge.token_ids)
    calls = []

    def no_tree(*args, **kwargs):  # as _run_tree_batch answers for a cache without reorder_cache
        calls.append(1)

    monkeypatch.setattr(hf_forward, "_run_tree_batch", no_tree)
    got = hf_forward.last_position_logprobs(
        judge.model,
        sequences,
        tokens,
        pad_id=judge.tokenizer.pad_token_id,
        max_batch_tokens=64,
        groups=groups,
    )
    assert len(calls) == 1  # tried once, then every group ran whole
    assert torch.allclose(got[:, -1], alone(judge.model, sequences, tokens), atol=1e-5)


def test_the_head_runs_once_at_the_end_only_where_logits_are_plain(judge):
    """A Llama's logits are head(last hidden state), so the head runs once over all
    sequences at the end; a Gemma 2 soft-caps its logits after the head, so it is scored
    through its own forward. Both equal scoring each sequence alone."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    assert hf_forward.plain_head(judge.model) is judge.model.get_output_embeddings()
    torch.manual_seed(0)
    capped = Gemma2ForCausalLM(
        Gemma2Config(
            vocab_size=len(judge.tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=16,
            final_logit_softcapping=2.0,  # logits of ~2 at most: far from head(hidden)
            pad_token_id=judge.tokenizer.pad_token_id,
        )
    ).eval()
    assert hf_forward.plain_head(capped) is None
    sequences, groups = both_orders(judge, PAIRS)
    tokens = list(judge.token_ids)
    for model in (judge.model, capped):
        got = hf_forward.last_position_logprobs(
            model,
            sequences,
            tokens,
            pad_id=judge.tokenizer.pad_token_id,
            max_batch_tokens=300,
            groups=groups,
        )
        assert torch.allclose(got[:, -1], alone(model, sequences, tokens), atol=1e-5)
