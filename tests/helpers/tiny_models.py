"""Tiny real transformers models built in code (no hub): 2 layers, hidden 64.

The tokenizer is a byte-level BPE trained locally on a few hundred lines, wrapped in
PreTrainedTokenizerFast, with a small chat template. Models are saved with save_pretrained and
loaded back by path, as users load theirs.
"""

from __future__ import annotations

import random
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_WORDS = [
    "the",
    "a",
    "an",
    "answer",
    "response",
    "question",
    "helpful",
    "harmless",
    "better",
    "worse",
    "assistant",
    "human",
    "user",
    "please",
    "explain",
    "why",
    "how",
    "what",
    "which",
    "is",
    "are",
    "was",
    "good",
    "bad",
    "kind",
    "rude",
    "safe",
    "unsafe",
    "polite",
    "clear",
    "short",
    "long",
    "first",
    "second",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "score",
    "rate",
    "A",
    "B",
    "tie",
    "Response",
    "Prompt",
    "Answer",
    "Rating",
    "Which",
]


def training_corpus(n_lines: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = [
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 14))) for _ in range(n_lines)
    ]
    lines += ["Answer: A", "Answer: B", "Answer: tie", "Rating: 1 2 3 4 5 6 7 8 9 10"] * 20
    lines += ["0123456789", "A B", " A B", "(A) (B)"] * 10
    return lines


def build_tokenizer(save_dir: str | Path | None = None, vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(training_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
    )
    fast.chat_template = CHAT_TEMPLATE
    if save_dir is not None:
        fast.save_pretrained(str(save_dir))
    return fast


def _llama_config(tokenizer, **overrides):
    from transformers import LlamaConfig

    values = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    values.update(overrides)
    return LlamaConfig(**values)


def build_causal_lm(save_dir: str | Path, seed: int = 0) -> Path:
    """A tiny LlamaForCausalLM + tokenizer saved to `save_dir`; returns the path."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    model = LlamaForCausalLM(_llama_config(tokenizer))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(save_dir))
    tokenizer.save_pretrained(str(save_dir))
    return Path(save_dir)


def build_reward_model(save_dir: str | Path, seed: int = 0) -> Path:
    """A tiny LlamaForSequenceClassification (num_labels=1) sharing the causal LM's tokenizer."""
    import torch
    from transformers import LlamaForSequenceClassification

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    model = LlamaForSequenceClassification(_llama_config(tokenizer, num_labels=1))
    model.save_pretrained(str(save_dir))
    tokenizer.save_pretrained(str(save_dir))
    return Path(save_dir)
