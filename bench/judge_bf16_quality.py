"""bf16 against float32 for the hf judge, before `dtype: auto` picks bf16 (issue 15).

The first 200 bundled HH-RLHF pairs (the chosen response placed in slot A or B by a seeded coin,
as the importer does) and the 100 LLMBar Natural pairs with their expert labels, judged by the
same model in float32 and in bfloat16 on the CPU. Criteria (pipeline/judging/dtype_check.py):
median |Δp| <= 0.01, max |Δp| <= 0.05, labels equal wherever either run's confidence exceeds
0.55, agreement with the human labels within 2 points.

    python bench/judge_bf16_quality.py --out bench/results/judge_bf16_quality.md
    python bench/judge_bf16_quality.py --hh 20 --llmbar 0      # a quick look
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def row(name: str, check) -> str:
    c = check
    return (
        f"| {name} | {c.pairs} | {c.median_abs_dp:.4f} | {c.mean_abs_dp:.4f} | "
        f"{c.max_abs_dp:.4f} | {c.labels_equal}/{c.pairs} | "
        f"{c.confident_pairs - c.confident_mismatches}/{c.confident_pairs} | "
        f"{c.agreement_float32:.1%} | {c.agreement_bfloat16:.1%} | "
        f"{'pass' if c.passed else 'FAIL: ' + '; '.join(c.failures)} |"
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="bundled:smollm2")
    parser.add_argument("--hh", type=int, default=200)
    parser.add_argument("--llmbar", type=int, default=100)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--out", type=Path, default=None, help="a markdown report")
    args = parser.parse_args(argv)

    from pipeline.judging.backends import hf_common
    from pipeline.judging.dtype_check import compare, hh_pairs, judge_p, llmbar_pairs

    sets = {"HH-RLHF": hh_pairs(args.hh), "LLMBar Natural": llmbar_pairs(args.llmbar)}
    sets = {name: items for name, items in sets.items() if items}
    everything = [item for items in sets.values() for item in items]
    pairs = [item.pair for item in everything]
    seconds, p = {}, {}
    for dtype in ("float32", "bfloat16"):
        started = time.perf_counter()
        p[dtype] = judge_p(args.model, dtype, pairs, args.max_length)
        seconds[dtype] = time.perf_counter() - started
    checks, start = {}, 0
    for name, items in sets.items():
        end = start + len(items)
        checks[name] = compare(
            p["float32"][start:end], p["bfloat16"][start:end], [i.human for i in items]
        )
        start = end
    checks["all"] = compare(p["float32"], p["bfloat16"], [i.human for i in everything])
    model_id = hf_common.resolve_model(args.model)[1]
    lines = [
        f"# bf16 against float32: {model_id}",
        "",
        f"`python bench/judge_bf16_quality.py --hh {args.hh} --llmbar {args.llmbar}`; the hf "
        f"judge (both orders, max_length {args.max_length}) on the CPU "
        f"({', '.join(sorted(hf_common.BF16_CPU_FLAGS & hf_common.cpu_flags())) or 'no bf16'})"
        f", once in float32 ({seconds['float32']:.0f} s) and once in bfloat16 "
        f"({seconds['bfloat16']:.0f} s).",
        "",
        "| pairs | n | median \\|Δp\\| | mean \\|Δp\\| | max \\|Δp\\| | labels equal | "
        "confident labels equal (> 0.55) | agreement f32 | agreement bf16 | check |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(row(name, check) for name, check in checks.items()),
        "",
        "Criteria: median |Δp| <= 0.01, max |Δp| <= 0.05, every label equal where either run's "
        "confidence exceeds 0.55, agreement with the human labels within 2 points.",
        "",
        f"Verdict: **{'pass' if all(c.passed for c in checks.values()) else 'FAIL'}**.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    result = {
        "model": model_id,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "checks": {name: check.as_dict() for name, check in checks.items()},
    }
    if args.out:
        args.out.write_text(report)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
