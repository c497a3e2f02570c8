"""Before and after in one run: the issue-13 evaluation (win rates, leaderboard) and
`compute_metrics` (with the judge's length bias) timed by two source trees on the same
database, in alternating child processes, medians side by side with the ratio; with
--metrics-db also `compute_metrics` and the alignment page's data on bench/metrics_1m.py's
database. Every output of the last round is compared field by field, before against after.

    git archive <base commit> | tar -x -C /tmp/base
    cp /tmp/b1m.db /tmp/b1m_before.db     # a database bench/winrate_1m.py built, before
    cp /tmp/m1m.db /tmp/m1m_before.db     # and one bench/metrics_1m.py built (optional)
    .venv/bin/python bench/winrate_compare.py --db /tmp/b1m.db --baseline /tmp/base \
        --baseline-db /tmp/b1m_before.db [--metrics-db /tmp/m1m.db \
        --baseline-metrics-db /tmp/m1m_before.db] [--rounds 3]

--db (and --metrics-db) are upgraded to this tree's head on first use (the migrations); the
baseline reads its own copies at its own head (the same rows).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import dataclasses, json, sys, time
from db.session import get_sessionmaker
from pipeline.evaluation.agreement import compute_metrics
from pipeline.evaluation.alignment import alignment_report
from pipeline.evaluation.leaderboard import compute_leaderboard
from pipeline.evaluation.win_rates import compute_win_rates
url, metrics_url, out_path = sys.argv[1:4]
jobs = [
    ("compute_win_rates", url, compute_win_rates),
    ("compute_leaderboard (200 resamples)", url, lambda s: compute_leaderboard(s, resamples=200)),
    ("compute_metrics (with the length bias)", url, compute_metrics),
]
if metrics_url:
    jobs += [
        ("metrics db: compute_metrics", metrics_url, compute_metrics),
        ("metrics db: alignment page data", metrics_url, alignment_report),
    ]
for job_url in {url, metrics_url} - {""}:  # imports pandas, ppi_py; opens both databases
    with get_sessionmaker(job_url)() as session:
        alignment_report(session)
        compute_win_rates(session)
timings, outputs = {}, {}
for name, job_url, job in jobs:
    with get_sessionmaker(job_url)() as session:
        wall, cpu = time.perf_counter(), time.process_time()
        result = job(session)
        timings[name] = (time.perf_counter() - wall, time.process_time() - cpu)
    outputs[name] = dataclasses.asdict(result) if dataclasses.is_dataclass(result) else [
        dataclasses.asdict(r) if dataclasses.is_dataclass(r) else r for r in result
    ]
with open(out_path, "w") as out:
    json.dump(outputs, out, default=str)
print(json.dumps(timings))
"""


def run(tree: Path, url: str, metrics_url: str, out: Path) -> dict[str, tuple[float, float]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, metrics_url, str(out)],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
    )
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def differences(before, after, path: str = "") -> tuple[list[str], float]:
    """Fields that differ (floats: not bit for bit), and the largest float difference."""
    if isinstance(before, dict) and isinstance(after, dict):
        found, worst = [], 0.0
        for key in sorted(set(before) | set(after)):
            if key not in before or key not in after:
                found.append(f"{path}.{key}: only on one side")
                continue
            more, diff = differences(before[key], after[key], f"{path}.{key}")
            found, worst = found + more, max(worst, diff)
        return found, worst
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [f"{path}: {len(before)} vs {len(after)} items"], 0.0
        found, worst = [], 0.0
        for index, (b, a) in enumerate(zip(before, after, strict=True)):
            more, diff = differences(b, a, f"{path}[{index}]")
            found, worst = found + more, max(worst, diff)
        return found, worst
    if isinstance(before, float) and isinstance(after, float):
        same = before == after or (math.isnan(before) and math.isnan(after))
        return ([] if same else [f"{path}: {before!r} vs {after!r}"]), (
            0.0 if same else abs(before - after)
        )
    return ([] if before == after else [f"{path}: {before!r} vs {after!r}"]), 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, required=True, help="the source tree before")
    parser.add_argument("--baseline-db", type=Path, required=True, help="the same data, before")
    parser.add_argument("--metrics-db", type=Path, help="bench/metrics_1m.py's database")
    parser.add_argument("--baseline-metrics-db", type=Path, help="the same data, before")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    urls = {
        "before": (f"sqlite:///{args.baseline_db}", ""),
        "after": (f"sqlite:///{args.db}", ""),
    }
    if args.metrics_db and args.baseline_metrics_db:
        urls["before"] = (urls["before"][0], f"sqlite:///{args.baseline_metrics_db}")
        urls["after"] = (urls["after"][0], f"sqlite:///{args.metrics_db}")
    trees = {"before": args.baseline, "after": ROOT}
    outs = {side: Path(tempfile.mkdtemp()) / f"{side}.json" for side in trees}
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    load_before = os.getloadavg()
    for _ in range(args.rounds):  # alternating, so both see the same load
        for side in ("before", "after"):
            runs[side].append(run(trees[side], *urls[side], outs[side]))
    load_after = os.getloadavg()
    print(f"{args.rounds} alternating rounds; medians, wall (CPU of the process)")
    for name in runs["before"][0]:
        med = {
            side: tuple(statistics.median(r[name][i] for r in runs[side]) for i in (0, 1))
            for side in runs
        }
        (bw, bc), (aw, ac) = med["before"], med["after"]
        print(
            f"  {name}: before {bw:.2f} s ({bc:.2f} s CPU), after {aw:.2f} s ({ac:.2f} s CPU)"
            f" -> {bw / aw:.1f}x wall, {bc / ac:.1f}x CPU"
        )
    print(f"load average before {load_before}, after {load_after}; {os.cpu_count()} CPUs")
    before, after = (json.loads(outs[side].read_text()) for side in ("before", "after"))
    for name in before:
        found, worst = differences(before[name], after[name])
        verdict = (
            "every field equal, floats bit for bit"
            if not found
            else (
                f"{len(found)} fields differ (largest float difference {worst:.3g}); first: "
                + "; ".join(found[:3])
            )
        )
        print(f"  output of {name}: {verdict}")


if __name__ == "__main__":
    main()
