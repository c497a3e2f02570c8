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
loaded once per generation in both routes. Each stage is timed on the wall clock and in CPU
seconds (time.process_time: this process, all its threads), the steadier figure on a shared
machine; the ratio job / by hand is printed per stage and clock. The last line printed is one
JSON object.

    python bench/evaluate_overhead.py --prompts 8 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
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


STAGES = ("generation", "judging", "reporting", "total")


def by_job(url: str, prompts_file: Path, n: int, max_new_tokens: int, judge) -> dict:
    """The job's own stage clock: wall and CPU seconds per stage (StageClock)."""
    from pipeline.evaluation.policy_eval import Decoding, EvaluateRequest, run_evaluation

    request = EvaluateRequest(
        policy="bundled:smollm2",
        baseline="bundled:smollm2",
        prompts_file=str(prompts_file),
        n=n,
        decoding=Decoding(max_new_tokens=max_new_tokens),
    )
    result = run_evaluation(request, created_by="bench", judge=judge, url=url)
    wall, cpu = dict(result.seconds), dict(result.cpu_seconds)
    wall["total"], cpu["total"] = sum(wall.values()), sum(cpu.values())
    return {"wall": wall, "cpu": cpu, "result": result}


def by_hand(url: str, texts: list[str], max_new_tokens: int, judge, folder: Path) -> dict:
    from db.session import session_scope
    from pipeline.evaluation.eval_inputs import resolve_model_ref
    from pipeline.evaluation.policy_eval import Decoding, StageClock, generate
    from pipeline.ingest.pairs import import_pairs
    from pipeline.judging.runner import label_pairs

    clock = StageClock()
    with session_scope(url) as session:
        model = resolve_model_ref(session, "bundled:smollm2")
    answers = generate(model, texts, Decoding(max_new_tokens=max_new_tokens), "auto", "auto")
    clock.lap("generation")
    pairs_file = folder / "hand_pairs.jsonl"
    with pairs_file.open("w") as handle:
        for i, (prompt, answer) in enumerate(zip(texts, answers, strict=True)):
            row = {"id": f"hand-{i}", "prompt": prompt, "response_a": answer}
            row.update(response_b=answer, system_a=model.system, system_b=model.system)
            handle.write(json.dumps(row) + "\n")
    with session_scope(url) as session:
        import_pairs(session, pairs_file, source="hand", progress=False)
    label_pairs(judge, url=url, source="hand", progress=False)
    clock.lap("judging")
    wall, cpu = clock.wall, clock.cpu
    wall["total"], cpu["total"] = sum(wall.values()), sum(cpu.values())
    return {"wall": wall, "cpu": cpu}


def medians(runs: list[dict], clock: str) -> dict[str, float]:
    return {
        k: round(statistics.median(r[clock].get(k, 0.0) for r in runs), 3)
        for k in STAGES
        if any(k in r[clock] for r in runs)
    }


def ratio(job: float, hand: float | None) -> str:
    return "-" if not hand else f"{job / hand:.3f}"


def print_table(job: dict, hand: dict) -> dict[str, dict[str, float | None]]:
    """Per clock and stage: job s, by-hand s, and their ratio; returns the ratios."""
    print(f"{'clock':<6}{'stage':<12}{'job s':>10}{'by hand s':>11}{'job/hand':>10}")
    ratios: dict[str, dict[str, float | None]] = {}
    for clock in ("wall", "cpu"):
        ratios[clock] = {}
        for stage in STAGES:
            j, h = job[clock].get(stage, 0.0), hand[clock].get(stage)
            ratios[clock][stage] = round(j / h, 4) if h else None
            shown = "-" if h is None else h
            print(f"{clock:<6}{stage:<12}{j:>10}{shown:>11}{ratio(j, h):>10}")
    return ratios


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
                print(route, json.dumps(shown), flush=True)

    job = {clock: medians(job_runs, clock) for clock in ("wall", "cpu")}
    hand = {clock: medians(hand_runs, clock) for clock in ("wall", "cpu")}
    ratios = print_table(job, hand)
    last = job_runs[-1]["result"]
    # What the job adds beyond generating and judging: its reporting stage, as a share of it.
    reporting_share = {
        clock: round(job[clock]["reporting"] / job[clock]["total"], 4)
        if job[clock]["total"]
        else None
        for clock in ("wall", "cpu")
    }
    for clock in ("wall", "cpu"):
        total = ratios[clock]["total"]
        overhead = "-" if total is None else f"{total - 1:+.1%}"
        share = reporting_share[clock]
        share_text = "-" if share is None else f"{share:.1%}"
        print(
            f"{clock}: job/hand total {overhead}, reporting {share_text} of the job "
            "(target: overhead < 10 %)"
        )
    print(f"win rate {last.ai_win_rate}, {last.identical_pairs} of {last.pairs} identical")
    print(
        json.dumps(
            {
                "prompts": len(texts),
                "max_new_tokens": args.max_new_tokens,
                "repeats": args.repeats,
                "job_s": job,
                "by_hand_s": hand,
                "job_over_hand": ratios,
                "reporting_share": reporting_share,
                "ai_win_rate": last.ai_win_rate,
                "pairs": last.pairs,
                "identical_pairs": last.identical_pairs,
            }
        )
    )


if __name__ == "__main__":
    main()
