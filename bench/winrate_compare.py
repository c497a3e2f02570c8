"""Before and after in one run: the issue-13 evaluation (win rates, leaderboard) and
`compute_metrics` (with the judge's length bias) timed by two source trees on the same
database, in alternating child processes, medians side by side with the ratio.

    git archive <base commit> | tar -x -C /tmp/base
    cp /tmp/b1m.db /tmp/b1m_before.db     # a database bench/winrate_1m.py built, before
    .venv/bin/python bench/winrate_compare.py --db /tmp/b1m.db --baseline /tmp/base \
        --baseline-db /tmp/b1m_before.db [--rounds 3]

--db is upgraded to this tree's head on first use (the migration's backfill); the baseline
reads its own copy at its own head (the same rows).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
from db.session import get_sessionmaker
from pipeline.evaluation.leaderboard import compute_leaderboard
from pipeline.evaluation.win_rates import compute_win_rates
from pipeline.evaluation.agreement import compute_metrics
maker = get_sessionmaker(sys.argv[1])
jobs = {
    "compute_win_rates": compute_win_rates,
    "compute_leaderboard (200 resamples)": lambda s: compute_leaderboard(s, resamples=200),
    "compute_metrics (with the length bias)": compute_metrics,
}
with maker() as session:
    compute_win_rates(session)  # imports pandas, ppi_py
result = {}
for name, job in jobs.items():
    with maker() as session:
        wall, cpu = time.perf_counter(), time.process_time()
        job(session)
        result[name] = (time.perf_counter() - wall, time.process_time() - cpu)
print(json.dumps(result))
"""


def run(tree: Path, url: str) -> dict[str, tuple[float, float]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url], env=env, cwd=tree, check=True, capture_output=True
    )
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, required=True, help="the source tree before")
    parser.add_argument("--baseline-db", type=Path, required=True, help="the same data, before")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url, baseline_url = f"sqlite:///{args.db}", f"sqlite:///{args.baseline_db}"
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    load_before = os.getloadavg()
    for _ in range(args.rounds):  # alternating, so both see the same load
        runs["before"].append(run(args.baseline, baseline_url))
        runs["after"].append(run(ROOT, url))
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


if __name__ == "__main__":
    main()
