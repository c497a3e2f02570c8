"""JudgeConfig: everything that defines a judge, from a YAML/TOML file, a preset, or flags.

    # judge.yaml
    name: smollm2-harmless
    backend: hf              # hf | openai | reward_model
    model: bundled:smollm2   # a local folder, a hub id, or bundled:smollm2
    template: pairwise       # a built-in name or a path to a .jinja file
    labels: {A: A, B: B}
    tie_band: 0.05
    openai: {base_url: http://127.0.0.1:8000/v1, concurrency: 8}   # openai backend only

Fields that change what the judge outputs go into the pinned judge version (`version_params`);
operational ones (device, batch budget, concurrency, timeouts) do not.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import InputError, UserError

BACKENDS = ("hf", "openai", "reward_model")
BUNDLED_SMOLLM2 = "bundled:smollm2"

# Presets usable as `--judge NAME` without a file.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {"name": "default-smollm2", "backend": "hf", "model": BUNDLED_SMOLLM2},
    "default-rationale": {
        "name": "default-smollm2-rationale",
        "backend": "hf",
        "model": BUNDLED_SMOLLM2,
        "template": "pairwise_rationale",
        "rationale": True,
    },
}

# How local backends fit long inputs into max_length (hf_common.fit_to_length); pinned into the
# judge version so that changing the rule makes a new version.
TRUNCATION = "prompt-start-then-response-ends"


@dataclass
class JudgeConfig:
    name: str | None = None
    backend: str = "hf"
    model: str = BUNDLED_SMOLLM2
    revision: str | None = None
    template: str = "pairwise"
    constitution: str | None = None  # replaces the template's built-in rubric preamble
    labels: dict[str, str] = field(default_factory=lambda: {"A": "A", "B": "B"})
    tie_band: float = 0.0  # |p - 0.5| <= tie_band -> "tie"
    min_label_mass: float = 0.0  # below this total label-token probability -> "invalid"
    max_length: int = 2048  # tokens per judge prompt; over it, TRUNCATION applies
    # Local backends (hf, reward_model)
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    device: str = "auto"  # auto | cpu | cuda | cuda:1 ...
    max_batch_tokens: int = 0  # padded tokens per forward pass; 0: auto (CPU 512, CUDA 32768)
    rationale: bool = False
    rationale_max_tokens: int = 96
    # Labelling loop
    chunk_size: int = 0  # pairs judged and committed together; 0: auto (CPU 16, CUDA 256)
    # OpenAI-compatible backend
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    timeout_s: float = 60.0
    retries: int = 3
    backoff_s: float = 1.0
    logprobs: str = "auto"  # auto | always | never
    top_logprobs: int = 10
    samples: int = 5  # k samples for the text-parse fallback
    temperature: float = 1.0  # for the k samples
    max_tokens: int = 4
    # Many prompts per request on the legacy completions endpoint, the chat template rendered on
    # our side (`tokenizer`, or the server's /tokenize): auto (probe once per run) | never
    prompt_lists: str = "auto"
    tokenizer: str | None = None  # a local folder or hub id with the judge model's chat template
    prompts_per_request: int = 64  # both orders of 32 pairs

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UserError(f"judge backend must be one of {', '.join(BACKENDS)}: {self.backend!r}")
        if set(self.labels) != {"A", "B"}:
            raise UserError(f"judge labels must map exactly A and B to tokens: {self.labels}")
        if len({str(v) for v in self.labels.values()}) != 2 or not all(self.labels.values()):
            raise UserError(f"judge label tokens must be two different strings: {self.labels}")
        if not 0 <= self.tie_band < 0.5:
            raise UserError(f"tie_band must lie in [0, 0.5): {self.tie_band}")
        if self.logprobs not in ("auto", "always", "never"):
            raise UserError(f"logprobs must be auto, always or never: {self.logprobs!r}")
        if self.prompt_lists not in ("auto", "never"):
            raise UserError(f"prompt_lists must be auto or never: {self.prompt_lists!r}")
        if self.max_batch_tokens < 0:
            raise UserError(f"max_batch_tokens must be 0 (auto) or more: {self.max_batch_tokens}")
        if self.chunk_size < 0:
            raise UserError(f"chunk_size must be 0 (auto) or more: {self.chunk_size}")
        for name in ("concurrency", "samples", "max_length", "prompts_per_request"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1: {getattr(self, name)}")

    def version_params(self) -> dict[str, Any]:
        """What changes the judge's outputs, pinned into the judge version."""
        params: dict[str, Any] = {
            "tie_band": self.tie_band,
            "max_length": self.max_length,
            "min_label_mass": self.min_label_mass,
            "constitution": self.constitution,
        }
        if self.backend in ("hf", "reward_model"):
            params["dtype"] = self.dtype
            params["truncation"] = TRUNCATION
        if self.backend == "hf":
            params["rationale"] = self.rationale
            if self.rationale:
                params["rationale_max_tokens"] = self.rationale_max_tokens
        if self.backend == "openai":
            params.update(
                base_url=self.base_url,
                logprobs=self.logprobs,
                top_logprobs=self.top_logprobs,
                samples=self.samples,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                rationale=self.rationale,
            )
        return params


FIELD_NAMES = {f.name for f in dataclasses.fields(JudgeConfig)}


def config_from_mapping(values: dict[str, Any], origin: str = "<flags>") -> JudgeConfig:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if key == "openai" and isinstance(value, dict):
            flat.update(value)  # a nested [openai] table is accepted for readability
        else:
            flat[key] = value
    for key in flat:
        if key not in FIELD_NAMES:
            raise InputError(
                origin, None, key, f"unknown judge setting; known: {sorted(FIELD_NAMES)}"
            )
    try:
        return JudgeConfig(**flat)
    except TypeError as error:
        raise InputError(origin, None, None, str(error)) from error


def load_judge_config(spec: str, overrides: dict[str, Any] | None = None) -> JudgeConfig:
    """A preset name ("default"), or a .yaml/.yml/.toml file; `overrides` (flags) win."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if spec in PRESETS:
        return config_from_mapping({**PRESETS[spec], **overrides}, f"preset '{spec}'")
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UserError(
            f"--judge {spec}: no such file, and not a preset ({', '.join(sorted(PRESETS))})"
        )
    values = read_settings_file(path)
    # A relative template path is relative to the config file.
    template = values.get("template")
    if (
        isinstance(template, str)
        and template.endswith(".jinja")
        and not Path(template).is_absolute()
    ):
        values["template"] = str(path.parent / template)
    return config_from_mapping({**values, **overrides}, str(path))


def read_settings_file(path: Path) -> dict[str, Any]:
    """The mapping in a .toml or YAML judge config file; bad syntax is an InputError."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise InputError(path, None, None, f"invalid TOML: {error}") from error
    else:
        import yaml

        try:
            values = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            line = getattr(getattr(error, "problem_mark", None), "line", None)
            raise InputError(
                path, None if line is None else line + 1, None, "invalid YAML"
            ) from error
    if not isinstance(values, dict):
        raise InputError(path, None, None, "a judge config must be a mapping of settings")
    return values
