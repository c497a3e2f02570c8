"""Import 100 k pairs into SQLite; target >= 10 k pairs/s.

Baseline named by the issue: the 10 k pairs/s target. Prints the median of --repeats runs, each
into a fresh database, and the machine's load alongside.

    .venv/bin/python bench/import_100k.py [--pairs 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

TARGET_PAIRS_PER_S = 10_000


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from db.session import session_scope, upgrade_database
    from pipeline.ingest.pairs import import_pairs

    work = Path(tempfile.mkdtemp(prefix="rlaif-bench-import-"))
    data = work / "pairs.jsonl"
    write_file(data, args.pairs)
    rates = []
    for run in range(args.repeats):
        url = f"sqlite:///{work / f'run{run}.db'}"
        upgrade_database(url)
        load = os.getloadavg()[0]
        start = time.perf_counter()
        with session_scope(url) as session:
            stats = import_pairs(session, data, source="bench", progress=False)
        seconds = time.perf_counter() - start
        assert stats.inserted == args.pairs
        rates.append(args.pairs / seconds)
        print(
            f"run {run}: {args.pairs} pairs in {seconds:.2f} s = {rates[-1]:,.0f} pairs/s "
            f"(load avg {load:.2f})"
        )
    median = statistics.median(rates)
    print(
        f"median: {median:,.0f} pairs/s; ratio to the {TARGET_PAIRS_PER_S:,} pairs/s target: "
        f"{median / TARGET_PAIRS_PER_S:.2f}x; cores {os.cpu_count()}, "
        f"load avg {os.getloadavg()[0]:.2f}"
    )
    print(
        json.dumps({"pairs_per_s": round(median), "ratio_vs_target": median / TARGET_PAIRS_PER_S})
    )


if __name__ == "__main__":
    main()
