"""`rlaif argilla push` of N pairs vs a raw SDK bulk `log` of the same records, same server.

    .venv/bin/python bench/argilla_push.py [--pairs 1000] [--repeats 1]

Uses the server in ARGILLA_API_URL/ARGILLA_API_KEY, or starts the local one (no Docker) in a
temporary folder. Each side writes a fresh dataset (inserts, not updates), alternating order
across repeats. Prints the medians and the ratio push / raw log (target <= 1.1), and the time of
pushing again with nothing changed (only changed records are sent).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def seed_database(url: str, n: int) -> None:
    from db.session import get_sessionmaker
    from tests.helpers.factories import judge_pair, make_judge, make_pairs

    with get_sessionmaker(url).begin() as session:
        pairs = make_pairs(session, n, prompt="Which answer is more helpful?")
        judge = make_judge(session, "bench-judge")
        for i, pair in enumerate(pairs):
            judge_pair(session, judge, pair, "AB"[i % 2], confidence=0.5 + (i % 50) / 100)


def raw_log(config, n: int) -> float:
    """The baseline: the SDK's own bulk `log` of the very records our push builds."""
    import argilla as rg

    from db.session import get_sessionmaker
    from pipeline.argilla import records
    from pipeline.review.queue import required_labels

    with get_sessionmaker().begin() as session:
        from sqlalchemy import select

        from db.models import Judgment, Pair

        required = required_labels(session)
        pairs = session.scalars(select(Pair).order_by(Pair.id)).all()
        judgments = {j.pair_id: j for j in session.scalars(select(Judgment))}
        built = [
            records.build_record(p, judgments.get(p.id), "bench-judge", required) for p in pairs
        ]
    client = rg.Argilla(api_url=config.api_url, api_key=config.api_key)
    dataset = rg.Dataset(
        name=f"bench-raw-{uuid.uuid4().hex[:8]}",
        workspace=config.workspace,
        settings=records.dataset_settings(),
        client=client,
    ).create()
    start = time.perf_counter()
    dataset.records.log(built)
    return time.perf_counter() - start


def our_push(config) -> tuple[float, float]:
    """Seconds for our push into a fresh dataset, then for pushing again with nothing changed."""
    from dataclasses import replace

    from pipeline.argilla import sync

    config = replace(config, dataset=f"bench-push-{uuid.uuid4().hex[:8]}")
    client = sync.connect(config)
    sync._get_or_create_dataset(client, config)  # created outside the timing, as above
    start = time.perf_counter()
    result = sync.push(config, judge="bench-judge")
    elapsed = time.perf_counter() - start
    assert result.pushed > 0
    start = time.perf_counter()
    again = sync.push(config, judge="bench-judge")
    repush = time.perf_counter() - start
    assert again.pushed == 0 and again.unchanged == result.pushed
    return elapsed, repush


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-argilla-"))
    os.environ["RLAIF_HOME"] = str(workdir)
    url = f"sqlite:///{workdir / 'bench.db'}"
    os.environ["RLAIF_DATABASE_URL"] = url
    started_home = None
    if not os.environ.get("ARGILLA_API_URL"):
        from pipeline.argilla import local_server as manager

        started_home = workdir / "argilla"
        info = manager.start(started_home, manager.free_port())
        os.environ.update(ARGILLA_API_URL=info.url, ARGILLA_API_KEY=info.owner_api_key)
    try:
        from pipeline.argilla.config import ArgillaConfig

        config = ArgillaConfig.from_env()
        seed_database(url, args.pairs)
        push_times, repush_times, raw_times = [], [], []
        for i in range(args.repeats):
            if i % 2 == 1:
                raw_times.append(raw_log(config, args.pairs))
            first, again = our_push(config)
            push_times.append(first)
            repush_times.append(again)
            if i % 2 == 0:
                raw_times.append(raw_log(config, args.pairs))
        push_s, raw_s = statistics.median(push_times), statistics.median(raw_times)
        repush_s = statistics.median(repush_times)
        print(f"pairs: {args.pairs}, repeats: {args.repeats}, server: {config.api_url}")
        print(f"rlaif argilla push: {push_s:.2f} s median ({args.pairs / push_s:.0f} records/s)")
        print(f"raw SDK bulk log:   {raw_s:.2f} s median ({args.pairs / raw_s:.0f} records/s)")
        print(f"ratio push / raw log: {push_s / raw_s:.2f} (target <= 1.1)")
        print(
            f"push again, nothing changed: {repush_s:.2f} s median "
            f"({push_s / repush_s:.0f}x faster than the first push; nothing is sent)"
        )
    finally:
        if started_home:
            from pipeline.argilla import local_server as manager

            manager.stop(started_home)


if __name__ == "__main__":
    main()
