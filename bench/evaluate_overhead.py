"""The evaluation job's overhead: `rlaif evaluate` of the bundled SmolLM2 policy against itself
on N prompts, side by side with the same pairs made by hand the way `rlaif generate` +
`rlaif import` + `rlaif label` make them.

(a) the job: pipeline.evaluation.policy_eval.run_evaluation (held-out prompts, the evaluation
    row, greedy generation, pairs with systems and slot coins, the pinned judge, the tie
    judgments, a spot-check sample, win rates raw / LC / PPI, the judge's re-validation);
(b) by hand: the same greedy generation call (generate.py's prompt rendering and hf_forward's
    batching), the pairs written to a JSONL file and imported (pipeline.ingest, `rlaif
    import`), then labelled (pipeline.judging.runner.label_pairs, `rlaif label --source`).

Against itself with greedy decoding every pair is two identical responses: a tie that neither
route sends to the judge, so (a) - (b) is the job's bookkeeping and reporting. Each repeat runs
(a) then (b) in a fresh database, alternating the order; medians are reported. The model is
loaded once per generation in both routes. The last line printed is one JSON object.

    python bench/evaluate_overhead.py --prompts 8 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "pipeline" / "data" / "hh_rlhf_harmless_sample.jsonl"


def prompts(n: int) -> list[str]:
    from pipeline.ingest.records import split_dialogues

    out = []
    with DATA.open() as handle:
        for number, line in enumerate(handle, 1):
            row = json.loads(line)
            prompt, _, _ = split_dialogues(DATA, f"line {number}", row["chosen"], row["rejected"])
            out.append(prompt.strip())
            if len(out) == n:
                return out
    return out


def fresh_database(folder: Path) -> str:
    from db.session import upgrade_database

    url = f"sqlite:///{folder / 'bench.db'}"
    os.environ["RLAIF_DATABASE_URL"] = url
    upgrade_database(url)
    return url


def by_job(url: str, prompts_file: Path, n: int, max_new_tokens: int, judge) -> dict:
    from pipeline.evaluation.policy_eval import Decoding, EvaluateRequest, run_evaluation

    started = time.perf_counter()
    request = EvaluateRequest(
        policy="smollm2",
        baseline="smollm2",
        prompts_file=str(prompts_file),
        n=n,
        decoding=Decoding(max_new_tokens=max_new_tokens),
    )
    result = run_evaluation(request, created_by="bench", judge=judge, url=url)
    return {**result["seconds"], "total": time.perf_counter() - started, "result": result}


def by_hand(url: str, texts: list[str], max_new_tokens: int, judge, folder: Path) -> dict:
    from db.session import session_scope
    from pipeline.evaluation.eval_inputs import resolve_model_ref
    from pipeline.evaluation.policy_eval import Decoding, generate
    from pipeline.ingest.pairs import import_pairs
    from pipeline.judging.runner import label_pairs

    started = time.perf_counter()
    with session_scope(url) as session:
        model = resolve_model_ref(session, "smollm2")
    answers = generate(model, texts, Decoding(max_new_tokens=max_new_tokens), "auto", "auto")
    seconds = {"generation": time.perf_counter() - started}
    mark = time.perf_counter()
    pairs_file = folder / "hand_pairs.jsonl"
    with pairs_file.open("w") as handle:
        for i, (prompt, answer) in enumerate(zip(texts, answers, strict=True)):
            row = {"id": f"hand-{i}", "prompt": prompt, "response_a": answer}
            row.update(response_b=answer, system_a=model.system, system_b=model.system)
            handle.write(json.dumps(row) + "\n")
    with session_scope(url) as session:
        import_pairs(session, pairs_file, source="hand", progress=False)
    label_pairs(judge, url=url, source="hand", progress=False)
    seconds["judging"] = time.perf_counter() - mark
    return {**seconds, "total": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    from pipeline.judging.config import load_judge_config
    from pipeline.judging.runner import build_judge

    judge = build_judge(load_judge_config("default"))  # loaded once, shared by both routes
    texts = prompts(args.prompts)
    job_runs, hand_runs = [], []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            url = fresh_database(folder)
            prompts_file = folder / "prompts.jsonl"
            prompts_file.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
            order = ("job", "hand") if repeat % 2 == 0 else ("hand", "job")
            tokens = args.max_new_tokens
            for route in order:
                if route == "job":
                    job_runs.append(by_job(url, prompts_file, len(texts), tokens, judge))
                    shown = {k: v for k, v in job_runs[-1].items() if k != "result"}
                else:
                    hand_runs.append(by_hand(url, texts, tokens, judge, folder))
                    shown = hand_runs[-1]
                # Each run as it ends: a run cut short still leaves its figures.
                print(route, json.dumps({k: round(v, 3) for k, v in shown.items()}), flush=True)

    def median(runs, key):
        return statistics.median(r.get(key, 0.0) for r in runs)

    stages = ("generation", "judging", "reporting", "total")
    job = {k: round(median(job_runs, k), 3) for k in stages}
    hand = {k: round(median(hand_runs, k), 3) for k in ("generation", "judging", "total")}
    overhead = job["total"] / hand["total"] - 1.0
    last = job_runs[-1]["result"]
    print(f"{'':<12}{'generation':>12}{'judging':>10}{'reporting':>11}{'total':>9}")
    print(
        f"{'job':<12}{job['generation']:>12}{job['judging']:>10}{job['reporting']:>11}{job['total']:>9}"
    )  # noqa: E501
    print(
        f"{'by hand':<12}{hand['generation']:>12}{hand['judging']:>10}{'-':>11}{hand['total']:>9}"
    )  # noqa: E501
    print(f"job overhead: {overhead:+.1%} (target < 10 %); win rate {last['ai_win_rate']}")
    print(
        json.dumps(
            {
                "prompts": len(texts),
                "max_new_tokens": args.max_new_tokens,
                "repeats": args.repeats,
                "job_s": job,
                "by_hand_s": hand,
                "overhead": round(overhead, 4),
                "ai_win_rate": last["ai_win_rate"],
                "pairs": last["pairs"],
                "identical_pairs": last["identical_pairs"],
            }
        )
    )


if __name__ == "__main__":
    main()
