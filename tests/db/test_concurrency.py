"""Concurrent writers, with real processes (spawn: each has its own engine and connections), on
SQLite and PostgreSQL. After each race the stored pair state must equal a recount from the
label tables (tests/helpers/recount.py), the export must hold no split-vote pair and lose no human
label, and no pair may be held by two reviewers at once when one label per pair is required.

Marked `concurrency`: the fast loop skips it with -m "not concurrency"; CI runs it."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Pair
from db.session import session_scope
from tests.helpers.concurrency_workers import claimer, judge, reviewer
from tests.helpers.recount import recount, wrong_pairs

pytestmark = pytest.mark.concurrency
ROOT = Path(__file__).resolve().parents[2]
JOIN_TIMEOUT_S = 600


def _make_pairs(url: str, folder: Path, n: int) -> list[int]:
    from pipeline.ingest.pairs import import_pairs

    path = folder / "pairs.jsonl"
    with open(path, "w") as handle:
        for i in range(n):
            row = {"id": f"c{i}", "prompt": f"q{i}", "response_a": f"a{i}", "response_b": f"b{i}"}
            handle.write(json.dumps(row) + "\n")
    with session_scope(url) as session:
        import_pairs(session, path, progress=False)
        return list(session.scalars(select(Pair.id).order_by(Pair.id)))


def _users(url: str, *names: str) -> list[tuple[int, str]]:
    from pipeline.auth import users as auth

    with session_scope(url) as session:
        return [
            (auth.create_user(session, username=n, password="password1", role="reviewer").id, n)
            for n in names
        ]


def _run_processes(*jobs) -> None:
    """Start every (target, args) in its own spawned process at once; all must exit 0."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(jobs))
    processes = [context.Process(target=t, args=(*args, barrier)) for t, args in jobs]
    for process in processes:
        process.start()
    for process in processes:
        process.join(JOIN_TIMEOUT_S)
    codes = [process.exitcode for process in processes]
    for process in processes:
        if process.is_alive():
            process.kill()
    assert codes == [0] * len(jobs), f"worker exit codes {codes}"


def _run_commands(db_url: str, commands: list[list[str]]) -> list[str]:
    """Start every command at once against db_url; all must exit 0. Returns their outputs."""
    env = {**os.environ, "RLAIF_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for c in commands
    ]
    outputs = [run.communicate(timeout=JOIN_TIMEOUT_S)[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0] * len(runs), outputs
    return outputs


def _assert_consistent(url: str, out: Path) -> None:
    """Stored state == recount for every pair; the export leaves split votes out and keeps every
    human consensus as a human label."""
    from pipeline.train.snapshots import create_snapshot

    with session_scope(url) as session:
        wrong = wrong_pairs(session)
        expected = recount(session)
        external = dict(session.execute(select(Pair.id, Pair.external_id)).tuples().all())
        create_snapshot(session, out_dir=out)
    exported = {}
    with open(out / "preferences.jsonl") as handle:
        for line in handle:
            record = json.loads(line)
            exported[record["pair_id"]] = record["label_source"]
    split = [
        pid
        for pid, state in expected.items()
        if state.human_label_count and state.human_consensus is None
    ]
    split_exported = [pid for pid in split if external[pid] in exported]
    human = [pid for pid, s in expected.items() if s.human_consensus in ("A", "B")]
    human_lost = [pid for pid in human if exported.get(external[pid]) != "human"]
    assert (len(wrong), len(split_exported), len(human_lost)) == (0, 0, 0), (
        f"{len(wrong)}/{len(expected)} pairs store a wrong state "
        f"(first: {next(iter(wrong.items()), None)}); {len(split_exported)}/{len(split)} "
        f"split votes exported; {len(human_lost)}/{len(human)} human labels not exported as human"
    )


def test_two_reviewers_opposite_labels(db_url, tmp_path):
    pair_ids = _make_pairs(db_url, tmp_path, 50)
    alice, bob = _users(db_url, "alice", "bob")
    _run_processes(
        (reviewer, (db_url, alice, pair_ids, "A")),
        (reviewer, (db_url, bob, pair_ids, "B")),
    )
    with session_scope(db_url) as session:
        states = recount(session)
    # Every pair: one A and one B, so two labels and no consensus (worked out by hand).
    assert {(s.human_label_count, s.human_consensus) for s in states.values()} == {(2, None)}
    _assert_consistent(db_url, tmp_path / "export")


def test_judge_writes_while_reviewers_label(db_url, tmp_path):
    pair_ids = _make_pairs(db_url, tmp_path, 120)
    alice, bob = _users(db_url, "alice", "bob")
    _run_processes(
        (judge, (db_url, 8)),
        (reviewer, (db_url, alice, pair_ids[:60], "A")),
        (reviewer, (db_url, bob, pair_ids[60:], "A")),
    )
    with session_scope(db_url) as session:
        states = recount(session)
    # The judge said B on every pair, each reviewer A: one human label, contradicted.
    assert {(s.human_label_count, s.human_consensus, s.queue_tier) for s in states.values()} == {
        (1, "A", 2)
    }
    _assert_consistent(db_url, tmp_path / "export")


def test_two_human_label_imports_at_once(db_url, tmp_path):
    n = 2500  # two batches of pipeline/ingest/label_files.py (2,000 rows each)
    _make_pairs(db_url, tmp_path, n)
    commands = []
    for annotator, label in (("ann1", "A"), ("ann2", "B")):
        path = tmp_path / f"{annotator}.jsonl"
        with open(path, "w") as handle:
            # Opposite file orders: batch by batch, each import then locks pairs the other
            # wants next (PostgreSQL breaks the cycle, the victim runs again).
            for i in range(n) if label == "A" else reversed(range(n)):
                row = {"pair_id": f"c{i}", "annotator": annotator, "label": label}
                handle.write(json.dumps(row) + "\n")
        commands.append(
            [sys.executable, "-m", "pipeline.cli", "import", "labels", str(path), "--kind", "human"]
        )
    outputs = _run_commands(db_url, commands)
    assert all(f"{n} labels read, {n} new or changed" in out for out in outputs), outputs
    with session_scope(db_url) as session:
        states = recount(session)
    assert {(s.human_label_count, s.human_consensus) for s in states.values()} == {(2, None)}
    _assert_consistent(db_url, tmp_path / "export")


def test_two_reviewers_claim_at_once(db_url, tmp_path):
    rounds = 100
    _make_pairs(db_url, tmp_path, 2 * rounds + 10)
    alice, bob = _users(db_url, "alice", "bob")
    outs = [tmp_path / "alice.json", tmp_path / "bob.json"]
    _run_processes(
        (claimer, (db_url, alice, rounds, str(outs[0]))),
        (claimer, (db_url, bob, rounds, str(outs[1]))),
    )
    first, second = (json.loads(out.read_text()) for out in outs)
    same = sum(a == b for a, b in zip(first, second, strict=True))
    claimed = first + second
    assert None not in claimed
    assert same == 0, f"both reviewers held the same pair in {same}/{rounds} rounds"
    # Each claimed pair was labelled at once (k = 1), so no pair may come round again.
    assert len(set(claimed)) == len(claimed)
    _assert_consistent(db_url, tmp_path / "export")


def test_two_pair_imports_add_the_same_new_systems_at_once(db_url, tmp_path):
    """Two `rlaif import pairs` runs name the same new systems (in opposite orders): each name
    gets one id, and every pair's ids are those of its names (checked against a join)."""
    from db.models import System

    n, names = 3000, [f"model-{i}" for i in range(6)]
    commands = []
    for run in ("r1", "r2"):
        path = tmp_path / f"{run}.jsonl"
        order = names if run == "r1" else names[::-1]
        with open(path, "w") as handle:
            for i in range(n):
                row = {
                    "id": f"{run}-{i}",
                    "prompt": f"{run} q{i}",
                    "response_a": f"a{i}",
                    "response_b": f"b{i}",
                    "system_a": order[i % 6],
                    "system_b": order[(i + 1) % 6],
                }
                handle.write(json.dumps(row) + "\n")
        commands.append([sys.executable, "-m", "pipeline.cli", "import", "pairs", str(path)])
    outputs = _run_commands(db_url, commands)
    assert all(f"{n} new" in out for out in outputs), outputs
    with session_scope(db_url) as session:
        ids = dict(session.execute(select(System.name, System.id)).tuples().all())
        pairs = session.execute(
            select(Pair.system_a, Pair.system_a_id, Pair.system_b, Pair.system_b_id)
        ).all()
    assert sorted(ids) == names
    assert len(pairs) == 2 * n
    wrong = [p for p in pairs if (ids[p[0]], ids[p[2]]) != (p[1], p[3])]
    assert wrong == []
