"""Local Hugging Face plumbing shared by the logprob judge, the direct scorer and the reward
model: model resolution and pinning, prompt building, label-token lookup, and the batched
last-position forward pass (length-sorted, left-padded, filled to a token budget)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch

from pipeline.errors import UserError
from pipeline.judging.backends import hf_forward
from pipeline.judging.base import JudgeIdentity
from pipeline.judging.templates import Rendered, load_template

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")


def resolve_model(model: str, revision: str | None = None) -> tuple[str, str, str | None]:
    """(what from_pretrained loads, the model id pinned in the version, revision or weights hash).

    Names resolve through pipeline/models.py. A local folder (a bundled model's too) is pinned by
    the sha256 of its weight files (cached by size and mtime), so a retrained model in the same
    folder is a new judge version. A hub id is pinned by `revision`.
    """
    from pipeline.models import ModelKind, resolve

    found = resolve(model, revision)
    if found.kind is ModelKind.HUB:
        return str(found.path), found.model_id, revision
    return str(found.path), found.model_id, weights_hash(found.path)


def weights_hash(folder: Path) -> str:
    files = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"{folder}: no weight files (*.safetensors, *.bin) in the model folder")
    from db.session import rlaif_home

    cache_path = rlaif_home() / "weights_hashes.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    digest = hashlib.sha256()
    changed = False
    for file in files:
        stat = file.stat()
        key = f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        if key not in cache:
            file_digest = hashlib.sha256()
            with file.open("rb") as handle:
                while block := handle.read(1 << 22):
                    file_digest.update(block)
            cache[key], changed = file_digest.hexdigest(), True
        digest.update(f"{file.name}:{cache[key]}".encode())
    if changed:
        # A read-only home only costs a re-hash next time.
        with contextlib.suppress(OSError):
            cache_path.write_text(json.dumps(cache))
    return "sha256:" + digest.hexdigest()[:32]


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# CPU features that run bfloat16 matmuls natively (oneDNN uses them); without one, bf16 on a
# CPU is emulated and slower than float32.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})

# Models whose bf16 scores failed the bf16-vs-float32 check (bench/judge_bf16_quality.py):
# model id (as pinned in the judge version) -> why. `dtype: auto` keeps them in float32.
# SmolLM2-135M-Instruct passed (bench/results/judge_bf16_quality.md).
BF16_UNFIT: dict[str, str] = {}


def cpu_has_native_bf16(flags: Iterable[str]) -> bool:
    """True when the CPU flags (as in /proc/cpuinfo) include AVX512-BF16 or AMX-BF16."""
    return not BF16_CPU_FLAGS.isdisjoint(flags)


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def auto_dtype(
    device_type: str, flags: Iterable[str], model_id: str | None = None
) -> tuple[torch.dtype, str]:
    """What `dtype: auto` picks, and why: bfloat16 on CUDA and on a CPU with native bf16,
    float32 elsewhere or for a model in BF16_UNFIT. Pure: the CPU flags are passed in."""
    if model_id in BF16_UNFIT:
        return torch.float32, f"float32: {model_id} failed the bf16 check ({BF16_UNFIT[model_id]})"
    if device_type == "cuda":
        return torch.bfloat16, "bfloat16: CUDA"
    if device_type == "cpu" and cpu_has_native_bf16(flags):
        found = ", ".join(sorted(BF16_CPU_FLAGS.intersection(flags)))
        return torch.bfloat16, f"bfloat16: the CPU has native bf16 ({found})"
    return torch.float32, f"float32: no native bf16 on {device_type}"


def pick_dtype(dtype: str, device: torch.device, model_id: str | None = None) -> torch.dtype:
    if dtype == "auto":
        return auto_dtype(device.type, cpu_flags() if device.type == "cpu" else (), model_id)[0]
    try:
        return DTYPES[dtype]
    except KeyError:
        raise UserError(f"dtype must be auto, float32, bfloat16 or float16: {dtype!r}") from None


class Float32Head(torch.nn.Module):
    """The output projection in float32 over a bf16/fp16 body. The judges read label-token
    logits at one position, where this costs nothing, and a half-precision head rounds logits
    of ~20 to ~0.1: on SmolLM2 it halved the bf16-vs-float32 |Δp| (bench/results/)."""

    def __init__(self, head: torch.nn.Linear):
        super().__init__()
        self.register_buffer("weight", head.weight.detach().float().clone())
        bias = head.bias.detach().float().clone() if head.bias is not None else None
        self.register_buffer("bias", bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(hidden.float(), self.weight, self.bias)


def use_float32_head(model) -> None:
    head = model.get_output_embeddings()
    if isinstance(head, torch.nn.Linear) and head.weight.dtype != torch.float32:
        model.set_output_embeddings(Float32Head(head))


def dtype_name(model) -> str:
    """The dtype the weights are in ("bfloat16", "float32"), and "+float32-head" where the
    output projection runs in float32: pinned in the judge version."""
    name = str(next(model.parameters()).dtype).removeprefix("torch.")
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return name + ("+float32-head" if isinstance(head, Float32Head) else "")


def load_tokenizer(source: str, revision: str | None = None):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, revision=revision)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_causal_lm(
    source: str, revision: str | None, dtype: str, device: str, model_id: str | None = None
):
    from transformers import AutoModelForCausalLM

    target = pick_device(device)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source, revision=revision, dtype=pick_dtype(dtype, target, model_id)
        )
    except OSError as error:
        raise UserError(f"cannot load the model '{source}': {error}") from error
    model.to(target).eval()
    use_float32_head(model)
    return model, load_tokenizer(source, revision)


class LabelTokenJudge:
    """What the log-prob judges (pairwise hf_logprob, harmless) share: a causal LM and its
    template, read at the label tokens (`token_ids`, in `slots` order) after the answer cue.

    A subclass says which labels are its two slots and renders an empty prompt for the cue."""

    slots: tuple[str, str]

    def __init__(self, config, *, model=None, tokenizer=None, dtype_by_model_id: bool = True):
        self.config = config
        self.source, self.model_id, self.revision = resolve_model(config.model, config.revision)
        self.template = load_template(config.template)
        if model is None:
            model, tokenizer = load_causal_lm(
                self.source,
                config.revision,
                config.dtype,
                config.device,
                self.model_id if dtype_by_model_id else None,
            )
        self.model, self.tokenizer = model, tokenizer
        if self.revision is None:  # a hub id without --revision: pin the commit that was loaded
            self.revision = getattr(model.config, "_commit_hash", None)
        self.batch_tokens = hf_forward.batch_budget(config.max_batch_tokens, model)
        self.label_ids = {
            slot: label_token_ids(tokenizer, text) for slot, text in config.labels.items()
        }
        check_disjoint(self.label_ids)
        cue = self.empty_render().answer_cue
        self.suffix = cue_suffix(tokenizer, list(config.labels.values()), cue)
        self.token_ids = self.label_ids[self.slots[0]] + self.label_ids[self.slots[1]]

    def empty_render(self) -> Rendered:
        raise NotImplementedError

    def slot_masses(self, sequences: list[list[int]], **options) -> list[tuple[float, float]]:
        """Per sequence, the probability mass of each slot's label tokens at the last position
        (options go to hf_forward.last_position_logprobs)."""
        logprobs = hf_forward.last_position_logprobs(
            self.model,
            sequences,
            self.token_ids,
            pad_id=self.tokenizer.pad_token_id,
            max_batch_tokens=self.batch_tokens,
            **options,
        )[:, -1, :].tolist()
        n = len(self.label_ids[self.slots[0]])
        return [
            (sum(math.exp(x) for x in row[:n]), sum(math.exp(x) for x in row[n:]))
            for row in logprobs
        ]

    def logprob_identity(self, label_tokens: dict, params: dict) -> JudgeIdentity:
        return JudgeIdentity(
            name=self.config.name,
            backend="hf",
            model_id=self.model_id,
            model_revision=self.revision,
            template_hash=self.template.hash,
            label_tokens=label_tokens,
            params=params,
            confidence_kind="logprob",
        )


def prompt_ids(tokenizer, rendered: Rendered, suffix: str = "") -> list[int]:
    """The chat-templated user message plus the answer cue, as token ids.

    With a chat template the cue starts the assistant's turn; without one, it follows the text.
    Length limits are applied to the texts before rendering (`fit_to_length`)."""
    cue = rendered.answer_cue + suffix
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": rendered.text}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        text += cue
    else:
        text = rendered.text + ("\n" + cue if cue else "\n")
    ids = tokenizer(text, add_special_tokens=not getattr(tokenizer, "chat_template", None))[
        "input_ids"
    ]
    return list(ids)


CUT_MARK = "[...]"
FIT_ROUNDS = 4  # a cut re-tokenises a little differently at its edge; re-check a few times


def fit_to_length(
    encode: Callable[[str, list[str]], list[list[int]]],
    tokenizer,
    prompt: str,
    responses: list[str],
    max_length: int,
) -> tuple[list[list[int]], str, list[str]]:
    """`encode(prompt, responses)` with every sequence it returns within `max_length` tokens.

    Over the limit, the start of the prompt goes first (the oldest turns of a conversation),
    then the ends of the responses, the longest cut first, so the template's preamble, the most
    recent turn and the answer cue always stay. All sequences (both orders of a pair) see the
    same cut texts. Returns the sequences and the texts they were built from."""
    encoded = encode(prompt, responses)
    for _ in range(FIT_ROUNDS):
        excess = max(len(ids) for ids in encoded) - max_length
        if excess <= 0:
            break
        prompt, responses = shorten(tokenizer, prompt, responses, excess)
        encoded = encode(prompt, responses)
    return encoded, prompt, responses


def shorten(tokenizer, prompt: str, responses: list[str], excess: int) -> tuple[str, list[str]]:
    """Texts with about `excess` tokens fewer (plus room for the cut marks)."""

    def tokens(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False) if text else []

    mark = len(tokens(CUT_MARK)) + 1
    need = excess + mark
    prompt_tokens = tokens(prompt)
    if len(prompt_tokens) > need:
        kept = tokenizer.decode(prompt_tokens[need:], skip_special_tokens=True)
        return f"{CUT_MARK} {kept.lstrip()}", responses
    need -= len(prompt_tokens)
    response_tokens = [tokens(r) for r in responses]
    need += mark * len(responses)
    cap = _water_level([len(t) for t in response_tokens], need)
    cut = []
    for response, ids in zip(responses, response_tokens, strict=True):
        if len(ids) <= cap:
            cut.append(response)
        else:
            head = tokenizer.decode(ids[:cap], skip_special_tokens=True)
            cut.append(f"{head.rstrip()} {CUT_MARK}")
    return (CUT_MARK if prompt else ""), cut


def _water_level(lengths: list[int], remove: int) -> int:
    """The largest cap such that cutting every length down to it removes >= `remove` tokens."""
    low, high = 0, max(lengths, default=0)
    while low < high:
        mid = (low + high + 1) // 2
        if sum(max(0, n - mid) for n in lengths) >= remove:
            low = mid
        else:
            high = mid - 1
    return low


def label_token_ids(tokenizer, label: str) -> list[int]:
    """First token of each spelling of `label`: as is and with a leading space.

    Byte-level BPE tokenizers have a separate "ĠA" token for " A"; SentencePiece-style ones
    encode both to "▁A"; character tokenizers give a bare space token first, which says nothing
    about the label and is skipped."""
    found: list[int] = []
    for spelling in (label, " " + label):
        ids = tokenizer.encode(spelling, add_special_tokens=False)
        if not ids:
            continue
        first = ids[0]
        piece = tokenizer.decode([first]).strip()
        if piece and label.startswith(piece) and first not in found:
            found.append(first)
    if not found:
        raise UserError(f"the tokenizer has no token that starts the label {label!r}")
    return found


def cue_suffix(tokenizer, labels: Sequence[str], cue: str) -> str:
    """ " " when the labels have no leading-space tokens and the cue does not end in a space.

    Such tokenizers (e.g. SmolLM2 for digits) write " 7" as a space token then "7"; reading the
    label right after "Rating:" would read the wrong position, so the space joins the prompt."""
    if not cue or cue[-1].isspace():
        return ""
    for label in labels:
        ids = tokenizer.encode(" " + label, add_special_tokens=False)
        if ids and tokenizer.decode([ids[0]]).strip():
            return ""
    return " "


def check_disjoint(token_sets: dict[str, list[int]]) -> None:
    seen: dict[int, str] = {}
    for label, ids in token_sets.items():
        for token in ids:
            if token in seen:
                raise UserError(
                    f"labels {seen[token]!r} and {label!r} start with the same token; "
                    "choose label tokens that differ in their first token"
                )
            seen[token] = label
