"""The review app's server time with 1 M pairs in SQLite or PostgreSQL (issues 4 and 10).

Targets: the queue page's first render < 1 s (server time), a label action < 200 ms, also with
the pair locks of issue 10 (db/pair_state.py): the label action is timed with the locks and
with them switched off (the code before issue 10), alternately, and the ratio printed. Also
timed: the browse page (first page, a deep page, a text search) and the home page.

Builds a SQLite database with bulk Core inserts: 1 M pairs over 50 k prompts, one judge on every
pair (3 % swap-inconsistent), a second judge on 100 k pairs, 50 k human labels. The queue
columns are computed here with the rules of db/pair_state.py (running refresh_pair_state over
1 M rows would only slow the build); a check at the end recomputes them with the real code for
a sample of pairs and fails if they differ.

    .venv/bin/python bench/app_queue.py [--pairs 1000000] [--repeats 5] [--db PATH]
    .venv/bin/python bench/app_queue.py --url postgresql+psycopg://USER@HOST/DB [--label-only]

With --db PATH an existing SQLite benchmark database is reused (built there when missing); with
--url the database must exist and is built when it holds no pairs. --label-only times just the
queue data, the label action and label + next (no page renders).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_QUEUE_S = 1.0
TARGET_LABEL_S = 0.2
CHUNK = 50_000
N_PROMPTS = 50_000
RESPONSES_PER_PROMPT = 10


def build(url: str, n_pairs: int, seed: int = 11) -> None:
    import numpy as np
    from sqlalchemy import insert

    from db.models import HumanLabel, JudgeVersion, Judgment, Pair, Prompt, Response, User
    from db.session import get_engine, upgrade_database
    from pipeline.auth.users import hash_password

    upgrade_database(url)
    engine = get_engine(url)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    filler = "The answer explains the steps in order and gives one example. " * 3
    with engine.begin() as conn:
        conn.execute(
            insert(User),
            [
                {
                    "username": "bench",
                    "password_hash": hash_password("bench-pass"),
                    "role": "reviewer",
                }
            ],
        )
        conn.execute(
            insert(Prompt),
            [
                {"id": i + 1, "text": f"Question {i}: how do I do task {i}?", "text_hash": f"p{i}"}
                for i in range(N_PROMPTS)
            ],
        )
        for start in range(0, N_PROMPTS * RESPONSES_PER_PROMPT, CHUNK):
            conn.execute(
                insert(Response),
                [
                    {
                        "id": r + 1,
                        "prompt_id": r // RESPONSES_PER_PROMPT + 1,
                        "text": f"Response {r}. {filler}",
                        "text_hash": f"r{r}",
                    }
                    for r in range(start, min(start + CHUNK, N_PROMPTS * RESPONSES_PER_PROMPT))
                ],
            )
        for j in (1, 2):
            conn.execute(
                insert(JudgeVersion),
                [
                    {
                        "id": j,
                        "name": f"bench-judge-{j}",
                        "fingerprint": f"f{j}",
                        "backend": "import",
                        "model_id": f"m{j}",
                        "confidence_kind": "imported",
                    }
                ],
            )
    labels = np.array(["A", "B", "tie"])
    label1 = rng.choice(3, n_pairs, p=[0.45, 0.45, 0.10])
    conf1 = rng.uniform(0.5, 1.0, n_pairs).round(4)
    swap = rng.random(n_pairs) < 0.03
    has2 = rng.random(n_pairs) < 0.10
    label2 = np.where(rng.random(n_pairs) < 0.8, label1, rng.choice(3, n_pairs))
    conf2 = rng.uniform(0.5, 1.0, n_pairs).round(4)
    human = rng.random(n_pairs) < 0.05
    label_h = np.where(rng.random(n_pairs) < 0.75, label1, rng.choice(3, n_pairs))
    with engine.begin() as conn:
        for start in range(0, n_pairs, CHUNK):
            pairs, judgments, humans = [], [], []
            for i in range(start, min(start + CHUNK, n_pairs)):
                prompt = i % N_PROMPTS
                a, b = rng.choice(RESPONSES_PER_PROMPT, 2, replace=False)
                disagree = bool(has2[i] and label2[i] != label1[i])
                contra = bool(
                    human[i] and (label_h[i] != label1[i] or (has2[i] and label_h[i] != label2[i]))
                )
                tier = 0 if swap[i] else 1 if disagree else 2 if contra else 3
                pairs.append(
                    {
                        "id": i + 1,
                        "external_id": f"x{i}",
                        "prompt_id": prompt + 1,
                        "response_a_id": prompt * RESPONSES_PER_PROMPT + int(a) + 1,
                        "response_b_id": prompt * RESPONSES_PER_PROMPT + int(b) + 1,
                        # "Response {r}. {filler}": the lengths differ by r's digits
                        "length_diff": len(str(prompt * RESPONSES_PER_PROMPT + int(a)))
                        - len(str(prompt * RESPONSES_PER_PROMPT + int(b))),
                        "source": f"src{i % 4}",
                        "metadata": {"domain": f"d{i % 7}"},
                        "content_hash": f"h{i}",
                        "human_label_count": int(human[i]),
                        "human_consensus": labels[label_h[i]] if human[i] else None,
                        "swap_inconsistent": bool(swap[i]),
                        "judge_disagreement": disagree,
                        "contradicts_human": contra,
                        "min_confidence": float(min(conf1[i], conf2[i]) if has2[i] else conf1[i]),
                        "queue_tier": tier,
                        "version": 1,
                    }
                )
                l1 = labels[label1[i]]
                judgments.append(_judgment(i, 1, l1, conf1[i], bool(swap[i])))
                if has2[i]:
                    judgments.append(_judgment(i, 2, labels[label2[i]], conf2[i], False))
                if human[i]:
                    humans.append(
                        {
                            "pair_id": i + 1,
                            "annotator": "someone-else",
                            "label": labels[label_h[i]],
                            "source": "import",
                        }
                    )
            conn.execute(insert(Pair), pairs)
            conn.execute(insert(Judgment), judgments)
            if humans:
                conn.execute(insert(HumanLabel), humans)
            print(
                f"  built {start + len(pairs):,} pairs ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # the ids above were explicit
            for table in ("prompts", "responses", "pairs", "judge_versions"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")


def _judgment(i: int, judge: int, label: str, confidence: float, swap: bool) -> dict:
    p_a = confidence if label == "A" else 1 - confidence if label == "B" else 0.5
    return {
        "pair_id": i + 1,
        "judge_version_id": judge,
        "label": label,
        "p_a": float(p_a),
        "confidence": float(confidence),
        "p_a_ab": float(p_a),
        "p_a_ba": float(p_a),
        "swap_inconsistent": swap,
        "status": "ok",
    }


def check_state(url: str, n_pairs: int) -> None:
    """The queue columns written by build() equal what refresh_pair_state computes."""
    import random

    from sqlalchemy import select

    from db.models import Pair
    from db.pair_state import refresh_pair_state
    from db.session import get_sessionmaker

    ids = random.Random(3).sample(range(1, n_pairs + 1), 2000)
    cols = (
        Pair.id,
        Pair.queue_tier,
        Pair.min_confidence,
        Pair.human_label_count,
        Pair.human_consensus,
        Pair.judge_disagreement,
        Pair.contradicts_human,
    )
    with get_sessionmaker(url)() as session:
        before = session.execute(select(*cols).where(Pair.id.in_(ids))).all()
        refresh_pair_state(session, ids)
        after = session.execute(select(*cols).where(Pair.id.in_(ids))).all()
        session.rollback()
    if sorted(before) != sorted(after):
        raise SystemExit("benchmark database is inconsistent with db/pair_state.py")


def timed(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


@contextmanager
def pair_locks_off():
    """The label path as it was before issue 10: no pair locks (db/pair_state.lock_pairs)."""
    import db.labels
    import db.pair_state

    saved = db.pair_state.lock_pairs

    def no_lock(session, pair_ids) -> None:
        return None

    db.pair_state.lock_pairs = db.labels.lock_pairs = no_lock
    try:
        yield
    finally:
        db.pair_state.lock_pairs = db.labels.lock_pairs = saved


def timed_before_after(fn, repeats: int) -> tuple[list[float], list[float]]:
    """`fn` without and with the pair locks, alternately, so load changes hit both alike."""
    before, after = [], []
    for _ in range(repeats):
        with pair_locks_off():
            before.append(timed(fn, 1)[0])
        after.append(timed(fn, 1)[0])
    return before, after


def database(args) -> tuple[str, str]:
    """(url, shown name); a SQLite file is built when missing, any database when it is empty."""
    from sqlalchemy import inspect, select

    from db.models import Pair
    from db.session import get_engine

    if args.url:
        url, shown = args.url, args.url.split("@")[-1]
        os.environ.setdefault("RLAIF_HOME", tempfile.mkdtemp(prefix="rlaif_bench_app_"))
    else:
        path = args.db or Path(tempfile.mkdtemp(prefix="rlaif_bench_app_")) / "bench.db"
        url, shown = f"sqlite:///{path}", str(path)
        os.environ.setdefault("RLAIF_HOME", str(path.parent))
    os.environ["RLAIF_DATABASE_URL"] = url
    engine = get_engine(url)
    empty = "pairs" not in inspect(engine).get_table_names()
    if not empty:
        with engine.connect() as conn:
            empty = conn.scalar(select(Pair.id).limit(1)) is None
    if empty:
        print(f"building {args.pairs:,} pairs in {shown} ...", flush=True)
        build(url, args.pairs)
    return url, shown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", type=Path, default=None, help="SQLite file")
    parser.add_argument("--url", default=None, help="any database URL, e.g. PostgreSQL")
    parser.add_argument("--label-only", action="store_true")
    args = parser.parse_args(argv)
    url, shown = database(args)
    from sqlalchemy import func, select

    from db.models import Pair
    from db.session import get_engine, session_scope
    from pipeline.auth.users import AuthUser
    from pipeline.review import queue
    from pipeline.review.reads import filter_choices

    with session_scope(url) as session:
        n_pairs = session.scalar(select(func.count()).select_from(Pair))
    check_state(url, n_pairs)
    user = AuthUser(id=1, username="bench", role="reviewer")
    print(f"database: {get_engine(url).dialect.name} {shown} ({n_pairs:,} pairs)")
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    def queue_data() -> None:
        with session_scope(url) as session:
            filter_choices(session)
            queue.claim_next_pair(session, username="bench")  # what a reviewer's page runs
            queue.queue_size(session, username="bench")

    with session_scope(url) as session:
        labelled = iter(
            queue.queue_pair_ids(session, username="bench", limit=20 * args.repeats + 30)
        )

    def label_action() -> None:
        with session_scope(url) as session:
            queue.record_label(session, user=user, pair_id=next(labelled), label="A")

    def label_and_next() -> None:
        label_action()
        with session_scope(url) as session:
            queue.claim_next_pair(session, username="bench")

    print(f"\n{'measurement':<40} {'median':>9} {'target':>8} {'ratio':>7}   runs")
    label_action()  # warm: the first write of a process opens connections, loads code
    before, after = timed_before_after(label_action, args.repeats)
    report("label action, before (no pair lock)", before, TARGET_LABEL_S)
    report("label action (record + commit, locked)", after, TARGET_LABEL_S)
    ratio = statistics.median(after) / statistics.median(before)
    print(f"{'  locked / before':<40} {ratio:>8.2f}x")
    rows = [
        ("queue data functions (claim included)", queue_data, TARGET_QUEUE_S),
        ("label + load next pair", label_and_next, TARGET_LABEL_S),
    ]
    if not args.label_only:
        rows += page_rows(url, user, args.repeats)
    for name, fn, target in rows:
        report(name, timed(fn, args.repeats)[1], target)


def report(name: str, runs: list[float], target: float | None) -> None:
    median = statistics.median(runs)
    ratio = f"{median / target:.2f}" if target else "–"
    tgt = f"{target * 1000:.0f} ms" if target else "–"
    print(
        f"{name:<40} {median * 1000:>6.1f} ms {tgt:>8} {ratio:>7}   "
        + " ".join(f"{t * 1000:.0f}" for t in runs)
    )


def page_rows(url: str, user, repeats: int) -> list[tuple]:
    """The page renders and the browse/home data (slower to run than the label rows)."""
    from streamlit.testing.v1 import AppTest

    from db.session import session_scope
    from pipeline.review import browse, queue
    from pipeline.review.overview import overview
    from pipeline.review.types import QueueFilters

    def render(page: str):
        def run() -> None:
            at = AppTest.from_file(str(ROOT / "app" / "views" / f"{page}.py"), default_timeout=60)
            at.session_state["auth_user"] = user
            at.run()
            assert not at.exception, at.exception

        return run

    def filtered() -> None:
        with session_scope(url) as session:
            queue.next_pairs(
                session,
                username="bench",
                filters=QueueFilters(
                    judge_version_id=2,
                    source="src1",
                    meta_key="domain",
                    meta_value="d3",
                    min_confidence=0.6,
                    max_confidence=0.9,
                ),
            )

    def browse_at(**kw):
        def run() -> None:
            with session_scope(url) as session:
                browse.browse(session, **kw)

        return run

    def home() -> None:
        with session_scope(url) as session:
            overview(session, username="bench")

    render("queue")()  # the first AppTest import of streamlit costs seconds: not a page cost
    return [
        ("queue page render (AppTest, server)", render("queue"), TARGET_QUEUE_S),
        ("queue, all filters", filtered, TARGET_QUEUE_S),
        ("browse page 1", browse_at(), None),
        ("browse page 2,000 (offset 100k)", browse_at(page=2000), None),
        (
            "browse search, rare term",
            browse_at(filters=browse.BrowseFilters(text="task 49999?")),
            None,
        ),
        (
            "browse search, common term",
            browse_at(filters=browse.BrowseFilters(text="explains the steps")),
            None,
        ),
        ("home data", home, None),
        ("home page render (AppTest)", render("home"), None),
    ]


if __name__ == "__main__":
    main()
