"""`dtype: auto` (bf16 where the hardware runs it natively), the pinned dtype, the bf16 quality
check's arithmetic, and bf16 autocast in training. The detection is pure: flag sets are fed in,
so these pass on any CPU."""

from __future__ import annotations

import pytest
import torch

from pipeline.errors import UserError
from pipeline.judging.backends import hf_common
from pipeline.judging.dtype_check import compare

ZEN4_FLAGS = {"fpu", "sse2", "avx2", "avx512f", "avx512_bf16", "avx512_vnni"}
SAPPHIRE_RAPIDS_FLAGS = {"avx2", "avx512f", "amx_tile", "amx_bf16", "amx_int8"}
ZEN3_FLAGS = {"fpu", "sse2", "avx2", "fma"}  # AVX2 only: bf16 would be emulated
SKYLAKE_FLAGS = {"avx2", "avx512f", "avx512bw", "avx512_vnni"}  # AVX-512 but no BF16


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (ZEN4_FLAGS, torch.bfloat16),
        (SAPPHIRE_RAPIDS_FLAGS, torch.bfloat16),
        (ZEN3_FLAGS, torch.float32),
        (SKYLAKE_FLAGS, torch.float32),
        (set(), torch.float32),
    ],
)
def test_auto_on_a_cpu_picks_bf16_only_with_native_support(flags, expected):
    dtype, why = hf_common.auto_dtype("cpu", flags)
    assert dtype == expected
    assert why.startswith(str(expected).removeprefix("torch."))


def test_auto_on_cuda_is_bf16_and_elsewhere_float32():
    assert hf_common.auto_dtype("cuda", set())[0] == torch.bfloat16
    assert hf_common.auto_dtype("mps", ZEN4_FLAGS)[0] == torch.float32


def test_a_model_that_failed_the_check_stays_float32_and_says_why(monkeypatch):
    monkeypatch.setitem(hf_common.BF16_UNFIT, "some/model", "max |dp| 0.09 > 0.05")
    dtype, why = hf_common.auto_dtype("cpu", ZEN4_FLAGS, "some/model")
    assert dtype == torch.float32
    assert "some/model" in why and "max |dp| 0.09" in why
    assert hf_common.auto_dtype("cpu", ZEN4_FLAGS, "other/model")[0] == torch.bfloat16


def test_cpu_flags_are_read_from_proc_cpuinfo_and_auto_follows_them():
    flags = hf_common.cpu_flags()
    native = hf_common.cpu_has_native_bf16(flags)
    expected = torch.bfloat16 if native else torch.float32
    assert hf_common.pick_dtype("auto", torch.device("cpu")) == expected


def test_explicit_dtypes_and_a_bad_one():
    cpu = torch.device("cpu")
    assert hf_common.pick_dtype("float32", cpu) == torch.float32
    assert hf_common.pick_dtype("bfloat16", cpu) == torch.bfloat16
    with pytest.raises(UserError, match="dtype must be"):
        hf_common.pick_dtype("bf16", cpu)


def test_the_pinned_version_names_the_dtype_auto_resolved_to(tiny_lm):
    from pipeline.judging.backends.hf_logprob import HfLogprobJudge
    from pipeline.judging.config import JudgeConfig

    versions = {}
    for dtype in ("float32", "bfloat16"):
        judge = HfLogprobJudge(JudgeConfig(model=str(tiny_lm), device="cpu", dtype=dtype))
        versions[dtype] = judge.identity.params["dtype"]
        rows = judge.judge(_pairs())
        assert all(0 <= r.p_a <= 1 for r in rows)
    assert versions == {"float32": "float32", "bfloat16": "bfloat16+float32-head"}
    auto = HfLogprobJudge(JudgeConfig(model=str(tiny_lm), device="cpu"))
    native = hf_common.cpu_has_native_bf16(hf_common.cpu_flags())
    assert auto.identity.params["dtype"] == versions["bfloat16" if native else "float32"]


def test_the_bf16_head_runs_in_float32_and_keeps_the_body_in_bf16(tiny_lm):
    model, _ = hf_common.load_causal_lm(str(tiny_lm), None, "bfloat16", "cpu")
    assert model.get_input_embeddings().weight.dtype == torch.bfloat16
    head = model.get_output_embeddings()
    assert isinstance(head, hf_common.Float32Head) and head.weight.dtype == torch.float32
    ids = torch.tensor([[1, 2, 3, 4]])
    assert model(input_ids=ids, logits_to_keep=1).logits.dtype == torch.float32


def _pairs():
    from pipeline.judging.base import PairInput

    return [
        PairInput(1, "which is better?", "the helpful answer", "a worse answer"),
        PairInput(2, "explain why", "because it is", "no"),
    ]


def test_quality_check_arithmetic_by_hand():
    # |dp| = 0.002, 0.004, 0.03, 0.0: median 0.003, max 0.03.
    p32 = [0.60, 0.50, 0.48, 0.20]
    p16 = [0.602, 0.504, 0.51, 0.20]
    check = compare(p32, p16, ["A", "B", "B", "B"])
    assert check.median_abs_dp == pytest.approx(0.003)
    assert check.max_abs_dp == pytest.approx(0.03)
    # Pairs 2 and 3 flip (0.50 -> B, 0.504 -> A; 0.48 -> B, 0.51 -> A), but neither run is
    # confident (> 0.55) about them.
    assert check.labels_equal == 2
    assert check.confident_pairs == 2 and check.confident_mismatches == 0
    # f32 labels A, B, B, B: 4/4 agree; bf16 A, A, A, B: 2/4. 50 points: a failure.
    assert check.agreement_float32 == 1.0 and check.agreement_bfloat16 == 0.5
    assert check.failures == ["agreement with humans moved -50.0 points"]


def test_quality_check_fails_on_big_gaps_and_confident_flips():
    check = compare([0.70, 0.50, 0.50], [0.40, 0.50, 0.50], ["A", "A", "A"])
    assert check.median_abs_dp == 0.0 and check.max_abs_dp == pytest.approx(0.3)
    assert check.confident_mismatches == 1
    assert not check.passed
    assert check.failures[:2] == ["max |dp| 0.3000 > 0.05", "1 confident labels differ"]


@pytest.mark.parametrize(
    ("flags", "precision", "expected"),
    [
        (ZEN4_FLAGS, "auto", {"bf16": True, "fp16": False, "use_cpu": True}),
        (ZEN3_FLAGS, "auto", {"bf16": False, "fp16": False}),
        (ZEN4_FLAGS, "fp32", {"bf16": False, "fp16": False}),
        (ZEN3_FLAGS, "bf16", {"bf16": True, "fp16": False, "use_cpu": True}),
    ],
)
def test_training_precision_follows_the_cpu(monkeypatch, flags, precision, expected):
    from pipeline.train.common import precision_flags

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(hf_common, "cpu_flags", lambda: frozenset(flags))
    assert precision_flags(precision) == expected


@pytest.mark.parametrize(("precision", "autocast"), [("bf16", True), ("fp32", False)])
def test_reward_training_runs_under_bf16_autocast_with_float32_weights(
    tmp_path, tiny_rm, rlaif_home, monkeypatch, precision, autocast
):
    """Two optimiser steps on the tiny reward model: a hook on a linear layer sees bf16
    activations (autocast) while its weight, the master copy, stays float32."""
    from pipeline.train import reward
    from pipeline.train.reward_config import RewardRunConfig
    from tests.helpers.train_toys import toy_rows, write_snapshot

    seen: list[tuple[torch.dtype, torch.dtype]] = []
    original = reward.LabelledRewardTrainer.compute_loss

    def spy(self, model, inputs, *args, **kwargs):
        layer = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
        hook = layer.register_forward_hook(
            lambda module, _, out: seen.append((out.dtype, module.weight.dtype))
        )
        try:
            return original(self, model, inputs, *args, **kwargs)
        finally:
            hook.remove()

    monkeypatch.setattr(reward.LabelledRewardTrainer, "compute_loss", spy)
    config = RewardRunConfig(
        snapshot=str(write_snapshot(tmp_path / "snap", toy_rows(24))),
        model_name_or_path=str(tiny_rm),
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=4,
        max_length=64,
        precision=precision,
    )
    reward.train_reward(config)
    assert seen, "compute_loss never ran"
    expected = torch.bfloat16 if autocast else torch.float32
    assert {out for out, _ in seen} == {expected}
    assert {weight for _, weight in seen} == {torch.float32}


@pytest.mark.slow  # the bundled SmolLM2 twice over 20 pairs: minutes on a CPU
def test_bf16_quality_check_on_20_bundled_pairs(rlaif_home):
    """The issue-15 check (bench/judge_bf16_quality.py) on the first 20 HH-RLHF pairs: bf16
    against float32 with the bundled judge."""
    from pipeline.judging.dtype_check import hh_pairs, run_check

    check = run_check("bundled:smollm2", hh_pairs(20))
    assert check.pairs == 20
    assert check.median_abs_dp <= 0.01 and check.max_abs_dp <= 0.05
    assert check.confident_mismatches == 0
    # 2 points of agreement is a tenth of one pair here: allow one coin-flip label (p ~ 0.5) to
    # move it; bench/judge_bf16_quality.py applies the 2 points to the full sets.
    assert abs(check.agreement_bfloat16 - check.agreement_float32) <= 1 / 20 + 1e-9
