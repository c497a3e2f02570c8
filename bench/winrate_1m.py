"""`rlaif winrate --json` and `rlaif leaderboard --json` over 1 M judged pairs among 20 systems.

Targets named by issue 13: winrate < 1 s (SQL aggregates for the counts, the logistic fits and
PPI on per-pair rows streamed once), leaderboard with 200 bootstrap resamples < 3 s. Builds a
SQLite database with bulk Core inserts: 20 systems with Bradley-Terry strengths, 1 M pairs
between random distinct systems, responses of 50..2,000 characters (100 k distinct texts shared
by the pairs), a judge that follows the strengths plus a length bias (1 % invalid, 0.5 %
failed), and a human reference on 2 % of the pairs. Prints the median of --repeats timed runs
(in process, as bench/metrics_1m.py does), the end-to-end CLI time, and the machine's load.

    .venv/bin/python bench/winrate_1m.py [--pairs 1000000] [--repeats 5] [--db PATH] [--out MD]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_WINRATE_S = 1.0
TARGET_LEADERBOARD_S = 3.0
CHUNK = 50_000
SYSTEMS = 20
RESPONSES = 100_000


def build(url: str, n_pairs: int, seed: int = 11) -> None:
    import numpy as np
    from sqlalchemy import insert

    from db.models import JudgeVersion, Judgment, Pair, Prompt, Response
    from db.models import system_ids as system_ids_of
    from db.session import get_engine, upgrade_database

    upgrade_database(url)
    engine = get_engine(url)
    rng = np.random.default_rng(seed)
    strength = np.linspace(-1.5, 1.5, SYSTEMS)
    names = [f"system-{i:02d}" for i in range(SYSTEMS)]
    lengths = rng.integers(50, 2001, size=RESPONSES)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(Prompt), [{"id": 1, "text": "p", "text_hash": "p"}])
        for begin in range(0, RESPONSES, CHUNK):
            conn.execute(
                insert(Response),  # text_length comes from the model's default, as in the product
                [
                    {
                        "id": i + 1,
                        "prompt_id": 1,
                        "text": "x" * int(lengths[i]),
                        "text_hash": str(i),
                    }
                    for i in range(begin, min(begin + CHUNK, RESPONSES))
                ],
            )
        conn.execute(
            insert(JudgeVersion),
            [
                {
                    "id": 1,
                    "name": "bench-judge",
                    "fingerprint": "bench",
                    "backend": "bench",
                    "model_id": "bench/judge",
                    "label_tokens": {},
                    "params": {},
                    "confidence_kind": "logprob",
                }
            ],
        )
        system_ids = system_ids_of(conn, names)
        a = rng.integers(0, SYSTEMS, size=n_pairs)
        b = (a + rng.integers(1, SYSTEMS, size=n_pairs)) % SYSTEMS  # never the same system
        resp_a = rng.integers(0, RESPONSES, size=n_pairs)
        resp_b = (resp_a + rng.integers(1, RESPONSES, size=n_pairs)) % RESPONSES
        diff = (lengths[resp_a] - lengths[resp_b]) / 550.0
        truth_logit = strength[a] - strength[b]
        p_a = 1 / (1 + np.exp(-(truth_logit + 1.2 * np.tanh(diff))))  # the judge likes length
        roll = rng.random(n_pairs)
        draw = rng.random(n_pairs)  # the label is drawn from p_a (a 3 % band around 0.5 is a tie)
        ai_label = np.where(np.abs(draw - p_a) < 0.015, "tie", np.where(draw < p_a, "A", "B"))
        human_roll = rng.random(n_pairs)
        human_a = rng.random(n_pairs) < 1 / (1 + np.exp(-truth_logit))
        for begin in range(0, n_pairs, CHUNK):
            span = range(begin, min(begin + CHUNK, n_pairs))
            conn.execute(
                insert(Pair),
                [
                    {
                        "id": i + 1,
                        "external_id": f"bench-{i}",
                        "prompt_id": 1,
                        "response_a_id": int(resp_a[i]) + 1,
                        "response_b_id": int(resp_b[i]) + 1,
                        "system_a": names[a[i]],
                        "system_b": names[b[i]],
                        "system_a_id": system_ids[names[a[i]]],
                        "system_b_id": system_ids[names[b[i]]],
                        "length_diff": int(lengths[resp_a[i]] - lengths[resp_b[i]]),
                        "source": "bench",
                        "metadata": {},
                        "content_hash": str(i),
                        "human_label_count": int(human_roll[i] < 0.02),
                        "human_consensus": ("A" if human_a[i] else "B")
                        if human_roll[i] < 0.02
                        else None,
                        "swap_inconsistent": False,
                        "judge_disagreement": False,
                        "contradicts_human": False,
                        "queue_tier": 3,
                        "version": 1,
                    }
                    for i in span
                ],
            )
            rows = []
            for i in span:
                status = "failed" if roll[i] < 0.005 else "invalid" if roll[i] < 0.015 else "ok"
                label = {"failed": None, "invalid": "invalid"}.get(status, str(ai_label[i]))
                rows.append(
                    {
                        "pair_id": i + 1,
                        "judge_version_id": 1,
                        "label": label,
                        "p_a": None if status == "failed" else float(p_a[i]),
                        "confidence": float(max(p_a[i], 1 - p_a[i])),
                        "status": status,
                    }
                )
            conn.execute(insert(Judgment), rows)
    if engine.dialect.name == "postgresql":  # statistics, as a live database has them
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    seconds = time.perf_counter() - t0
    print(f"built {n_pairs:,} judged pairs among {SYSTEMS} systems in {seconds:.1f} s")


def built(url: str) -> bool:
    from sqlalchemy import inspect, text

    from db.session import get_engine

    engine = get_engine(url)
    if "pairs" not in inspect(engine).get_table_names():
        return False
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM pairs")).scalar() > 0


def timed(fn, repeats: int) -> tuple[float, list[float], float]:
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), times, statistics.median(cpu)


def cli_time(url: str, *args: str, repeats: int = 3) -> tuple[float, list[float], int]:
    env = {**os.environ, "RLAIF_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    times, size = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run(
            [str(Path(sys.executable).parent / "rlaif"), *args],
            env=env,
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
        size = len(out.stdout)
    return statistics.median(times), times, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", type=Path, help="reuse (or build) the benchmark database here")
    parser.add_argument(
        "--url", help="a database URL instead (e.g. an empty PostgreSQL database; built if empty)"
    )
    parser.add_argument("--out", type=Path, help="also write the figures to this Markdown file")
    args = parser.parse_args()

    if args.url:
        url = args.url
        if not built(url):
            build(url, args.pairs)
    else:
        path = args.db or Path(tempfile.mkdtemp(prefix="rlaif-bench-winrate-")) / "bench.db"
        url = f"sqlite:///{path}"
        if not path.exists():
            build(url, args.pairs)

    from db.session import get_sessionmaker
    from pipeline.evaluation.leaderboard import compute_leaderboard
    from pipeline.evaluation.win_rates import compute_win_rates

    maker = get_sessionmaker(url)

    def winrate():
        with maker() as session:
            return compute_win_rates(session)

    def leaderboard():
        with maker() as session:
            return compute_leaderboard(session, resamples=200)

    rows = winrate()  # first call: imports pandas, ppi_py
    board = leaderboard()[0]
    top = board.systems[0]
    judged = sum(r.pairs + r.ai_invalid for r in rows) // 2
    print(
        f"  {len(rows)} win-rate rows over {judged:,} judged pairs; largest |raw - LC| "
        f"{max(abs(r.lc_gap) for r in rows if r.lc_gap is not None):.3f}; leaderboard top "
        f"{top.system} (AI {top.ai_strength:+.2f}, people rank {top.human_rank}), "
        f"Kendall tau {board.kendall_tau:.2f}"
    )
    load_before = os.getloadavg()
    win_s, win_all, win_cpu = timed(winrate, args.repeats)
    board_s, board_all, board_cpu = timed(leaderboard, args.repeats)
    win_cli, win_cli_all, _ = cli_time(url, "winrate", "--json")
    board_cli, board_cli_all, _ = cli_time(url, "leaderboard", "--json")
    load_after = os.getloadavg()
    lines = [
        f"compute_win_rates ({judged:,} judged pairs, {SYSTEMS} systems): median {win_s:.3f} s "
        f"over {args.repeats} {[round(t, 3) for t in win_all]} (CPU {win_cpu:.3f} s)  "
        f"target < {TARGET_WINRATE_S} s -> {win_s / TARGET_WINRATE_S:.2f} x target",
        f"compute_leaderboard (200 bootstrap resamples): median {board_s:.3f} s over "
        f"{args.repeats} {[round(t, 3) for t in board_all]} (CPU {board_cpu:.3f} s)  "
        f"target < {TARGET_LEADERBOARD_S} s -> {board_s / TARGET_LEADERBOARD_S:.2f} x target",
        f"`rlaif winrate --json` end to end (process start and imports included): median "
        f"{win_cli:.3f} s {[round(t, 3) for t in win_cli_all]}",
        f"`rlaif leaderboard --json` end to end: median {board_cli:.3f} s "
        f"{[round(t, 3) for t in board_cli_all]}",
        f"load average (1, 5, 15 min) before {load_before}, after {load_after}; "
        f"{os.cpu_count()} CPUs",
    ]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(f"    {line}" for line in lines) + "\n")


if __name__ == "__main__":
    main()
