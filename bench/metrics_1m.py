"""`rlaif metrics` and the alignment page's data over 1 M AI judgments and 100 k human labels.

Targets named by the issues: metrics < 1 s (issue 2), the alignment page < 2 s (issue 4).
Builds a SQLite database with bulk Core inserts (500 k pairs x 2 judge versions = 1 M
judgments; 100 k human labels on 85 k pairs, 15 k of them with two votes, some split), then
prints the median of --repeats timed runs and the machine's load alongside.

    .venv/bin/python bench/metrics_1m.py [--pairs 500000] [--repeats 5] [--db PATH]

With --db PATH an existing benchmark database is reused (it is built there when missing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_METRICS_S = 1.0
TARGET_PAGE_S = 2.0
CHUNK = 50_000


def build(url: str, n_pairs: int, n_single: int, n_double: int, seed: int = 7) -> None:
    import numpy as np
    from sqlalchemy import insert

    from db.models import HumanLabel, JudgeVersion, Judgment, Pair, Prompt, Response
    from db.session import get_engine, upgrade_database

    upgrade_database(url)
    engine = get_engine(url)
    rng = np.random.default_rng(seed)
    labels = np.array(["A", "B", "tie"])
    truth = rng.choice(3, size=n_pairs, p=[0.45, 0.45, 0.10])
    start_day = datetime(2026, 9, 1)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(Prompt), [{"id": 1, "text": "p", "text_hash": "p"}])
        conn.execute(
            insert(Response),
            [
                {"id": 1, "prompt_id": 1, "text": "a", "text_hash": "a"},
                {"id": 2, "prompt_id": 1, "text": "b", "text_hash": "b"},
            ],
        )
        for j in (1, 2):
            conn.execute(
                insert(JudgeVersion),
                [
                    {
                        "id": j,
                        "name": f"bench-judge-v{j}",
                        "fingerprint": f"bench{j}",
                        "backend": "bench",
                        "model_id": f"bench/model-v{j}",
                        "label_tokens": {},
                        "params": {},
                        "confidence_kind": "logprob",
                        "created_at": start_day + timedelta(days=28 * (j - 1)),
                    }
                ],
            )

        # Human labels: pairs [0, n_single) get one vote, the next n_double get two votes;
        # a second vote differs 30 % of the time (a split: no consensus).
        consensus: dict[int, str | None] = {}
        counts: dict[int, int] = {}
        human_rows = []
        for i in range(n_single):
            human_rows.append((i, "rev1", labels[truth[i]]))
            consensus[i], counts[i] = labels[truth[i]], 1
        second = rng.random(n_double) < 0.3
        for k in range(n_double):
            i = n_single + k
            first = labels[truth[i]]
            other = labels[(truth[i] + 1) % 3] if second[k] else first
            human_rows += [(i, "rev1", first), (i, "rev2", other)]
            consensus[i] = first if other == first else None
            counts[i] = 2
        for begin in range(0, n_pairs, CHUNK):
            rows = [
                {
                    "id": i + 1,
                    "external_id": f"bench-{i}",
                    "prompt_id": 1,
                    "response_a_id": 1,
                    "response_b_id": 2,
                    "length_diff": 0,  # "a" and "b"
                    "source": "bench",
                    "metadata": {},
                    "content_hash": str(i),
                    "created_at": start_day,
                    "human_label_count": counts.get(i, 0),
                    "human_consensus": consensus.get(i),
                    "swap_inconsistent": False,
                    "judge_disagreement": False,
                    "contradicts_human": False,
                    "queue_tier": 3,
                    "version": 1,
                }
                for i in range(begin, min(begin + CHUNK, n_pairs))
            ]
            conn.execute(insert(Pair), rows)
        conn.execute(
            insert(HumanLabel),
            [
                {"pair_id": i + 1, "annotator": who, "label": str(lab), "source": "import"}
                for i, who, lab in human_rows
            ],
        )
        # AI judgments: confidence in [0.5, 1]; right with probability ~ confidence (v2 is
        # over-confident), 2 % invalid, 1 % failed; both orders scored.
        for j in (1, 2):
            conf = 0.5 + 0.5 * rng.beta(2, 1.5, size=n_pairs)
            right = rng.random(n_pairs) < (conf if j == 1 else conf - 0.1)
            wrong = (truth + rng.integers(1, 3, size=n_pairs)) % 3
            ai = np.where(right, truth, wrong)
            roll = rng.random(n_pairs)
            swap = rng.random(n_pairs) < 0.15
            day = rng.integers(0, 28, size=n_pairs) + 28 * (j - 1)
            for begin in range(0, n_pairs, CHUNK):
                rows = []
                for i in range(begin, min(begin + CHUNK, n_pairs)):
                    status = "failed" if roll[i] < 0.01 else "invalid" if roll[i] < 0.03 else "ok"
                    label = (
                        None
                        if status == "failed"
                        else "invalid"
                        if status == "invalid"
                        else labels[ai[i]]
                    )
                    p_a = float(conf[i]) if label == "A" else 1 - float(conf[i])
                    when = start_day + timedelta(days=int(day[i]))
                    rows.append(
                        {
                            "pair_id": i + 1,
                            "judge_version_id": j,
                            "label": None if label is None else str(label),
                            "p_a": None if status == "failed" else p_a,
                            "confidence": None if status != "ok" else float(conf[i]),
                            "p_a_ab": None if status == "failed" else min(1.0, p_a + 0.1),
                            "p_a_ba": None
                            if status == "failed"
                            else (1 - p_a if swap[i] else p_a - 0.05),
                            "swap_inconsistent": None if status == "failed" else bool(swap[i]),
                            "status": status,
                            "error": "timeout" if status == "failed" else None,
                            "created_at": when,
                            "updated_at": when,
                        }
                    )
                conn.execute(insert(Judgment), rows)
    print(
        f"built {n_pairs:,} pairs, {2 * n_pairs:,} judgments, {len(human_rows):,} human labels "
        f"in {time.perf_counter() - t0:.1f} s"
    )


def check_consistency(url: str, sample: int = 1000) -> None:
    """The bench writes Pair.human_consensus itself (fast); make sure the product's own
    refresh_pair_state computes the same value on a sample of labelled pairs."""
    from sqlalchemy import select

    from db.models import Pair
    from db.pair_state import refresh_pair_state
    from db.session import get_sessionmaker

    with get_sessionmaker(url)() as session:
        ids = list(session.scalars(select(Pair.id).where(Pair.human_label_count > 0).limit(sample)))
        ids += list(
            session.scalars(select(Pair.id).where(Pair.human_label_count > 1).limit(sample))
        )
        before = dict(
            session.execute(select(Pair.id, Pair.human_consensus).where(Pair.id.in_(ids))).all()
        )
        refresh_pair_state(session, ids)
        after = dict(
            session.execute(select(Pair.id, Pair.human_consensus).where(Pair.id.in_(ids))).all()
        )
        session.rollback()
    assert before == after, "bench consensus differs from refresh_pair_state"


def timed(fn, repeats: int) -> tuple[float, list[float], float]:
    """Median wall time, all wall times, and median CPU time of this process (which the
    machine's load inflates far less than the wall time)."""
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), times, statistics.median(cpu)


def render_page(url: str, repeats: int) -> tuple[float, list[float], float]:
    """Server time of the whole alignment page (queries, pandas, Altair specs), signed in as a
    viewer; the page's 30 s report cache is cleared before each run."""
    os.environ["RLAIF_DATABASE_URL"] = url
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from db.session import session_scope
    from pipeline.auth import users as auth

    with session_scope(url) as session:
        row = auth.list_users(session)
        found = next((u for u in row if u.username == "bench-viewer"), None)
        if found is None:
            found = auth.create_user(
                session, username="bench-viewer", password="bench-password", role="viewer"
            )
        user = auth.AuthUser.of(found)

    def run() -> None:
        st.cache_data.clear()
        at = AppTest.from_file(str(ROOT / "app" / "views" / "alignment.py"), default_timeout=120)
        at.session_state["auth_user"] = user
        at.run()
        assert not at.exception, at.exception

    run()  # the first AppTest run imports streamlit, numpy, ppi_py: not a page cost
    return timed(run, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=500_000)
    parser.add_argument("--single", type=int, default=70_000, help="pairs with one human vote")
    parser.add_argument("--double", type=int, default=15_000, help="pairs with two votes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", type=Path, help="reuse (or build) the benchmark database here")
    args = parser.parse_args()

    path = args.db or Path(tempfile.mkdtemp(prefix="rlaif-bench-metrics-")) / "bench.db"
    url = f"sqlite:///{path}"
    if not path.exists():
        build(url, args.pairs, args.single, args.double)
    check_consistency(url)

    from db.session import get_sessionmaker
    from pipeline.evaluation.agreement import compute_metrics
    from pipeline.evaluation.alignment import alignment_report

    maker = get_sessionmaker(url)

    def metrics():
        with maker() as session:
            return compute_metrics(session)

    def page():
        with maker() as session:
            return alignment_report(session)

    result = metrics()
    for row in result:
        print(
            f"  {row['judge']}: judged {row['judged']:,}, compared {row['pairs_compared']:,}, "
            f"agreement {row['agreement']:.3f}, kappa {row['cohen_kappa']:.3f}, "
            f"invalid {row['ai_invalid']:,}, failed {row['ai_failed']:,}"
        )
    load_before = os.getloadavg()
    metrics_s, metrics_all, metrics_cpu = timed(metrics, args.repeats)
    start = time.perf_counter()
    page()  # first call: imports numpy / ppi_py, as the page's first render does
    first_page_s = time.perf_counter() - start
    page_s, page_all, page_cpu = timed(page, args.repeats)
    env = {**os.environ, "RLAIF_DATABASE_URL": url}
    cli_times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(
            [str(ROOT / ".venv/bin/rlaif"), "metrics", "--json"],
            env=env,
            check=True,
            capture_output=True,
        )
        cli_times.append(time.perf_counter() - start)
    page_render_s, render_all, render_cpu = render_page(url, args.repeats)
    load_after = os.getloadavg()

    print(
        f"compute_metrics (1 M judgments): median {metrics_s:.3f} s over {args.repeats} "
        f"{[round(t, 3) for t in metrics_all]} (CPU {metrics_cpu:.3f} s)  "
        f"target < {TARGET_METRICS_S} s "
        f"-> {metrics_s / TARGET_METRICS_S:.2f} x target"
    )
    print(
        f"`rlaif metrics --json` end to end (process start included): median "
        f"{statistics.median(cli_times):.3f} s {[round(t, 3) for t in cli_times]}"
    )
    print(
        f"alignment page data (all judges): median {page_s:.3f} s over {args.repeats} "
        f"{[round(t, 3) for t in page_all]} (CPU {page_cpu:.3f} s), "
        f"first call {first_page_s:.3f} s  "
        f"target < {TARGET_PAGE_S} s -> {page_s / TARGET_PAGE_S:.2f} x target"
    )
    print(
        f"alignment page full render (AppTest, server time, report cache cleared): median "
        f"{page_render_s:.3f} s {[round(t, 3) for t in render_all]} (CPU {render_cpu:.3f} s)  "
        f"target < {TARGET_PAGE_S} s -> {page_render_s / TARGET_PAGE_S:.2f} x target"
    )
    print(
        f"load average (1, 5, 15 min) before {load_before}, after {load_after}; "
        f"{os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
