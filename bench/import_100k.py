"""Import 100 k pairs into SQLite; target >= 10 k pairs/s.

Baseline named by the issue: the 10 k pairs/s target, and the import as it was before the
stricter reading of issue 10 (`--baseline`, a git ref, default `main`). Runs alternate between
the baseline tree and this tree (each run a fresh process and a fresh database), so that both
see the same machine load; prints each run, the medians, and the ratios, wall clock and per
CPU-second of the importing process (on a shared machine the wall clock follows the load).

    .venv/bin/python bench/import_100k.py [--pairs 100000] [--repeats 3] [--baseline main]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

TARGET_PAIRS_PER_S = 10_000
ROOT = Path(__file__).resolve().parents[1]


def write_file(path: Path, n: int) -> None:
    with open(path, "w") as handle:
        for i in range(n):
            handle.write(
                json.dumps(
                    {
                        "id": f"bench-{i}",
                        "prompt": f"Prompt number {i % (n // 2 or 1)}: explain something useful.",
                        "response_a": f"First answer to {i}, with a few words of content.",
                        "response_b": f"Second answer to {i}, with other words of content.",
                        "metadata": {"bucket": i % 7},
                    }
                )
                + "\n"
            )


def worker(data: Path, url: str, pairs: int) -> None:
    """One timed import, in the tree that PYTHONPATH points at."""
    from db.session import session_scope, upgrade_database
    from pipeline.ingest.pairs import import_pairs

    upgrade_database(url)
    start, cpu_start = time.perf_counter(), time.process_time()
    with session_scope(url) as session:
        stats = import_pairs(session, data, source="bench", progress=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    assert stats.inserted == pairs, stats
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu}))


def export_tree(ref: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def timed_run(tree: Path, data: Path, url: str, pairs: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(data), url]
    out = subprocess.run(
        [*command, "--pairs", str(pairs)], env=env, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default="main", help="git ref of the baseline tree")
    parser.add_argument("--worker", nargs=2, metavar=("DATA", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker[0]), args.worker[1], args.pairs)
        return
    work = Path(tempfile.mkdtemp(prefix="rlaif-bench-import-"))
    data = work / "pairs.jsonl"
    write_file(data, args.pairs)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.baseline],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    trees = {f"baseline {commit}": export_tree(args.baseline, work / "baseline")}
    trees["this tree"] = ROOT
    rates: dict[str, list[float]] = {name: [] for name in trees}
    cpu_rates: dict[str, list[float]] = {name: [] for name in trees}
    for run in range(args.repeats):
        for name, tree in trees.items():
            url = f"sqlite:///{work / f'{len(rates[name])}-{name[:4]}.db'}"
            load = os.getloadavg()[0]
            timing = timed_run(tree, data, url, args.pairs)
            rates[name].append(args.pairs / timing["seconds"])
            cpu_rates[name].append(args.pairs / timing["cpu_seconds"])
            print(
                f"run {run} {name:>16}: {args.pairs} pairs in {timing['seconds']:.2f} s = "
                f"{rates[name][-1]:,.0f} pairs/s; {timing['cpu_seconds']:.2f} CPU s = "
                f"{cpu_rates[name][-1]:,.0f} pairs per CPU-second (load avg {load:.2f})"
            )
    report(rates, cpu_rates)


def report(rates: dict[str, list[float]], cpu_rates: dict[str, list[float]]) -> None:
    """Medians side by side. On a shared machine the wall-clock rate follows the load; the rate
    per CPU-second of the importing process is what the code itself costs."""
    medians = {name: statistics.median(values) for name, values in rates.items()}
    cpu = {name: statistics.median(values) for name, values in cpu_rates.items()}
    for name in medians:
        print(
            f"median {name:>16}: {medians[name]:,.0f} pairs/s "
            f"({medians[name] / TARGET_PAIRS_PER_S:.2f}x the {TARGET_PAIRS_PER_S:,} target); "
            f"{cpu[name]:,.0f} pairs per CPU-second ({cpu[name] / TARGET_PAIRS_PER_S:.2f}x); "
            f"best run {max(rates[name]):,.0f} pairs/s"
        )
    (base, new), (cpu_base, cpu_new) = medians.values(), cpu.values()
    print(
        f"this tree / baseline: {new / base:.2f}x wall clock, {cpu_new / cpu_base:.2f}x per "
        f"CPU-second; cores {os.cpu_count()}, load avg {os.getloadavg()[0]:.2f}"
    )
    print(
        json.dumps(
            {
                "pairs_per_s": round(new),
                "baseline_pairs_per_s": round(base),
                "ratio_vs_baseline": round(new / base, 3),
                "ratio_vs_target": round(new / TARGET_PAIRS_PER_S, 3),
                "pairs_per_cpu_s": round(cpu_new),
                "baseline_pairs_per_cpu_s": round(cpu_base),
                "cpu_ratio_vs_baseline": round(cpu_new / cpu_base, 3),
                "best_pairs_per_s": round(max(list(rates.values())[1])),
                "baseline_best_pairs_per_s": round(max(list(rates.values())[0])),
            }
        )
    )


if __name__ == "__main__":
    main()
