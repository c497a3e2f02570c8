"""Judge throughput: the same model on the same pairs, both orders, three ways, side by side.

(a) this judge: HfLogprobJudge.judge (templating, fitting to max_length, tokenising, the
    template preamble run once and each pair's shared start once for both orders, then one
    last-position forward pass per order in length-sorted token-budget batches, label softmax,
    order combination);
(b) generate-and-parse baseline, as the old TRL HfPairwiseJudge did: batched greedy `generate`
    of a few tokens, then parse the first A/B in the text. It gets the SAME prompts and the SAME
    length-sorted batches as (a), which favours the baseline: the ratio isolates generation;
(c) a raw batched forward (logits_to_keep=1) over exactly the token tensors (a) builds, with
    nothing else timed: the limit for (a);
(d) with --compare-float32 (when (a) runs in another dtype): (a) again with the model in
    float32, on the same pairs.

Against the hardware: the same run measures the machine's float32 and bfloat16 matmul peak (a
short torch loop) and the model's forward FLOPs per token (2 x the weights of its linear layers,
plus causal attention at the mean sequence length; padding and the lm_head, which runs at one
position, not counted), and reports (a)'s useful FLOP/s as `share_of_peak` of its dtype's peak.

Methods are interleaved in each repeat (a, b, c, a, b, c, ...) so that a busy machine slows all
three alike; medians are reported. The last line printed is one JSON object.

    python bench/judge_throughput.py --quick          # < 1 minute on a laptop CPU
    python bench/judge_throughput.py --pairs 32 --compare-float32   # bf16 vs float32 here
    python bench/judge_throughput.py --device cuda    # 256 pairs, full length
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "pipeline" / "data" / "hh_rlhf_harmless_sample.jsonl"


def load_pairs(n: int):
    from pipeline.ingest.records import split_dialogues
    from pipeline.judging.base import PairInput

    pairs = []
    with DATA.open() as handle:
        for number, line in enumerate(handle, start=1):
            row = json.loads(line)
            prompt, chosen, rejected = split_dialogues(DATA, number, row["chosen"], row["rejected"])
            pairs.append(PairInput(number, prompt, chosen, rejected))
            if len(pairs) == n:
                break
    while len(pairs) < n:  # the sample has 300 pairs; repeat for larger runs
        pairs.append(pairs[len(pairs) % 300])
    return pairs


def matmul_peak(dtype, size: int = 2048, seconds: float = 0.5) -> float:
    """FLOP/s of the best of a few timed square matmuls in `dtype` on the CPU (a short loop)."""
    import torch

    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    torch.matmul(a, b)  # warm-up: kernels, allocator
    best, spent = 0.0, 0.0
    while spent < seconds:
        started = time.perf_counter()
        for _ in range(4):
            torch.matmul(a, b)
        took = time.perf_counter() - started
        spent += took
        best = max(best, 4 * 2 * size**3 / took)
    return best


def forward_flops_per_token(model, mean_length: float) -> float:
    """2 x the weights of the decoder's linear layers (the lm_head runs at one position only),
    plus QK^T and AV at the mean causal context (mean_length / 2): 4 x d x context per layer."""
    import torch

    head = model.get_output_embeddings()
    linear = sum(
        m.weight.numel()
        for m in model.modules()
        if isinstance(m, torch.nn.Linear) and m is not head
    )
    config = model.config
    attention = 4 * config.num_hidden_layers * config.hidden_size * mean_length / 2
    return 2 * linear + attention


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="bundled:smollm2")
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=1024, help="prompt tokens kept")
    parser.add_argument("--max-batch-tokens", type=int, default=0, help="0: auto by device")
    parser.add_argument("--gen-tokens", type=int, default=8, help="tokens (b) generates")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--naive-batch",
        type=int,
        default=0,
        help="also time (b) with fixed batches of this size in input order (0: skip)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--quick", action="store_true", help="4 pairs, 320 tokens: < 1 minute")
    parser.add_argument(
        "--compare-float32", action="store_true", help="(d): (a) again in float32, same pairs"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.max_length, args.repeats = 4, 320, 3

    import torch

    from pipeline.judging.backends import hf_forward
    from pipeline.judging.backends.hf_logprob import HfLogprobJudge
    from pipeline.judging.base import parse_label
    from pipeline.judging.config import JudgeConfig

    config = JudgeConfig(
        model=args.model,
        device=args.device,
        dtype=args.dtype,
        max_length=args.max_length,
        max_batch_tokens=args.max_batch_tokens,
    )
    judge = HfLogprobJudge(config)
    model, tokenizer = judge.model, judge.tokenizer
    pairs = load_pairs(args.pairs)
    device = next(model.parameters()).device

    order_ab, order_ba = zip(*(judge.encode_pair(p) for p in pairs), strict=True)
    sequences = [*order_ab, *order_ba]
    args.max_batch_tokens = judge.batch_tokens
    batches = hf_forward.make_batches([len(s) for s in sequences], args.max_batch_tokens)
    tensors = [
        hf_forward.left_pad([sequences[i] for i in b], tokenizer.pad_token_id, device)
        for b in batches
    ]
    n_tokens = sum(len(s) for s in sequences)
    preamble = hf_forward.shared_prefix_length(sequences)
    trees, flat = hf_forward._plan(
        sequences, [(i, len(pairs) + i) for i in range(len(pairs))], preamble, keep=1
    )
    judge_tokens = preamble + sum(len(sequences[i]) - preamble for i in flat)
    judge_tokens += sum(len(g.stem) + sum(len(t) for t in g.tails) for g in trees)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def run_judge() -> list[str]:
        return [row.label for row in judge.judge(pairs)]

    def run_generate(naive: bool = False) -> list[str]:
        if naive:  # fixed-size batches in input order, as a plain batched loop does
            texts = []
            for start in range(0, len(sequences), args.naive_batch):
                texts += hf_forward.generate_batched(
                    model,
                    tokenizer,
                    sequences[start : start + args.naive_batch],
                    max_new_tokens=args.gen_tokens,
                    max_batch_tokens=10**9,
                )
        else:
            texts = hf_forward.generate_batched(
                model,
                tokenizer,
                sequences,
                max_new_tokens=args.gen_tokens,
                max_batch_tokens=args.max_batch_tokens,
            )
        decoded = [tokenizer.decode(t, skip_special_tokens=True) for t in texts]
        first = [parse_label(t, config.labels) for t in decoded]
        labels = []
        for i in range(len(pairs)):  # both orders must be parsed, as in (a)
            ab, ba = first[i], first[len(pairs) + i]
            if ab is None or ba is None:
                labels.append("?")  # unparseable: a generate-and-parse judge has no label
            elif (ab, ba) in (("A", "B"), ("B", "A")):
                labels.append(ab)
            else:
                labels.append("tie")  # both orders picked the same slot
        return labels

    def run_forward() -> None:
        with torch.inference_mode():
            for inputs in tensors:
                model(**inputs, logits_to_keep=1, use_cache=False)

    methods = {"judge": run_judge, "generate": run_generate, "forward": run_forward}
    dtype = next(model.parameters()).dtype
    if args.compare_float32 and dtype != torch.float32:
        judge32 = HfLogprobJudge(dataclasses.replace(config, dtype="float32"))
        methods["float32"] = lambda: [row.label for row in judge32.judge(pairs)]
    if args.naive_batch:
        methods["naive"] = lambda: run_generate(naive=True)
    with torch.inference_mode():  # warm-up (allocator, kernels) on the smallest batch
        model(**tensors[-1], logits_to_keep=1, use_cache=False)
    timings: dict[str, list[float]] = {name: [] for name in methods}
    outputs: dict[str, object] = {}
    for _ in range(args.repeats):
        for name, method in methods.items():
            sync()
            started = time.perf_counter()
            outputs[name] = method()
            sync()
            timings[name].append(time.perf_counter() - started)

    rate = {name: len(pairs) / statistics.median(values) for name, values in timings.items()}
    peaks = (
        {str(d).removeprefix("torch."): matmul_peak(d) for d in (torch.float32, torch.bfloat16)}
        if device.type == "cpu"
        else {}
    )
    per_token = forward_flops_per_token(model, n_tokens / len(sequences))
    judge_flops = judge_tokens * per_token * rate["judge"] / len(pairs)
    forward_flops = n_tokens * per_token * rate["forward"] / len(pairs)
    dtype_name = str(dtype).removeprefix("torch.")
    peak = peaks.get(dtype_name)
    print(
        f"model {judge.model_id} on {device} ({next(model.parameters()).dtype}), "
        f"{len(pairs)} pairs x 2 orders = {len(sequences)} sequences, {n_tokens} tokens "
        f"({judge_tokens} run by (a): preamble once, each pair's start once), "
        f"{len(batches)} batches of <= {args.max_batch_tokens} padded tokens, "
        f"median of {args.repeats}"
    )
    for name, label in (
        ("judge", "(a) this judge"),
        ("generate", "(b) generate+parse"),
        ("forward", "(c) raw forward"),
        ("float32", "(d) (a) in float32"),
    ):
        if name not in timings:
            continue
        runs = ", ".join(f"{t:.2f}" for t in timings[name])
        print(f"  {label:<22} {rate[name]:8.2f} pairs/s   runs (s): {runs}")
    parsed = sum(label != "?" for label in outputs["generate"])
    consistent = sum(label in ("A", "B") for label in outputs["generate"])
    print(
        f"  (b) parsed A/B in both orders for {parsed}/{len(pairs)} pairs within "
        f"{args.gen_tokens} new tokens ({consistent} order-consistent)"
    )
    print(
        "  hardware: matmul peak "
        + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items())
        + f"; forward {per_token / 1e6:.0f} MFLOP/token; (a) {judge_flops / 1e9:.0f} GFLOP/s"
        + (f" = {judge_flops / peak:.0%} of the {dtype_name} peak" if peak else "")
        + f"; (c) {forward_flops / 1e9:.0f} GFLOP/s"
    )
    result = {
        "pairs_per_s": round(rate["judge"], 3),
        "dtype": dtype_name,
        "share_of_peak": round(judge_flops / peak, 3) if peak else None,
        "forward_share_of_peak": round(forward_flops / peak, 3) if peak else None,
        "judge_gflops": round(judge_flops / 1e9, 1),
        "peak_gflops": {k: round(v / 1e9, 1) for k, v in peaks.items()},
        "forward_mflops_per_token": round(per_token / 1e6, 1),
        "ratio_vs_generate": round(rate["judge"] / rate["generate"], 3),
        "ratio_vs_forward": round(rate["judge"] / rate["forward"], 3),
        "generate_pairs_per_s": round(rate["generate"], 3),
        "forward_pairs_per_s": round(rate["forward"], 3),
        "pairs": len(pairs),
        "tokens": n_tokens,
        "tokens_run_by_judge": judge_tokens,
        "gen_tokens": args.gen_tokens,
        "max_batch_tokens": args.max_batch_tokens,
        "device": str(device),
        "model": judge.model_id,
        "quick": args.quick,
    }
    if "float32" in rate:
        result["ratio_vs_float32"] = round(rate["judge"] / rate["float32"], 3)
        result["float32_pairs_per_s"] = round(rate["float32"], 3)
    if "naive" in rate:
        result["ratio_vs_generate_naive_batches"] = round(rate["judge"] / rate["naive"], 3)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
