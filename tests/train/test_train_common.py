"""Shared training helpers that need no model."""

from pipeline.train.common import use_distinct_pad_token
from tests.helpers.tiny_models import build_tokenizer


def test_pad_token_equal_to_eos_is_replaced():
    # SmolLM2's case: pad == EOS, and chat templates put EOS inside every prompt.
    tokenizer = build_tokenizer()
    tokenizer.pad_token = tokenizer.eos_token
    use_distinct_pad_token(tokenizer)
    assert tokenizer.pad_token == "<pad>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id


def test_missing_pad_token_gets_one_and_a_distinct_pad_is_kept():
    tokenizer = build_tokenizer()
    use_distinct_pad_token(tokenizer)
    assert tokenizer.pad_token == "<pad>"  # already distinct: unchanged
    tokenizer.pad_token = None
    use_distinct_pad_token(tokenizer)
    assert tokenizer.pad_token == "<pad>"
