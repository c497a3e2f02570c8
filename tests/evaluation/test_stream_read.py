"""The per-pair stream read in parallel parts (one connection each) gives the rows one
connection gives; a session with uncommitted writes reads on its own connection (the others
would miss them); probabilities cross as integers, exact to 2**-33. SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from db.models import Judgment
from pipeline.evaluation import stream_read
from pipeline.evaluation.outcomes import SystemFilter, stream_pairs
from tests.helpers.factories import judge_pair, label_pair, make_judge, make_pair

P_VALUES = [0.3, 0.5, 0.123456789, 0.9999, 1 / 3, 0.0]


def build(session) -> int:
    judge = make_judge(session, "j1")
    for i, p in enumerate(P_VALUES * 3):
        a, b = ("X", "Y") if i % 2 else ("Z", "X")
        pair = make_pair(session, f"p{i}", system_a=a, system_b=b, response_a="a" * (i + 1))
        judge_pair(session, judge, pair, "A" if p > 0.5 else "B", max(p, 1 - p), p_a=p)
        if i % 3 == 0:
            label_pair(session, pair, "ann", "B")
    session.commit()
    return judge.id


def read(session, judge_id):
    stream = stream_pairs(session, [judge_id], SystemFilter(), self_pairs=True)
    return {name: getattr(stream, name) for name in stream.__dataclass_fields__}


def test_parallel_parts_read_what_one_connection_reads(session, monkeypatch):
    judge_id = build(session)
    monkeypatch.setattr(stream_read, "usable_cores", lambda: 3)
    monkeypatch.setattr(stream_read, "PARALLEL_MIN_ROWS", 0)
    assert len(stream_read._judgment_ranges(session)) == 3  # the parallel path is taken
    parallel = read(session, judge_id)
    monkeypatch.setattr(stream_read, "usable_cores", lambda: 1)
    assert stream_read._judgment_ranges(session) == []
    single = read(session, judge_id)
    assert parallel.keys() == single.keys()
    for name, values in single.items():
        if name == "names":
            assert parallel[name] == values == ("X", "Y", "Z")
        else:
            np.testing.assert_array_equal(parallel[name], values, err_msg=name)
    stored = sorted(session.scalars(select(Judgment.p_a)))
    assert len(single["soft"]) == len(stored) == 18
    # Probabilities crossed as round(p * 2**32): within half a step of what was stored.
    assert np.max(np.abs(np.sort(single["soft"]) - np.sort(stored))) <= 2.0**-33


def test_uncommitted_writes_are_read_on_the_sessions_connection(session, monkeypatch):
    judge_id = build(session)
    monkeypatch.setattr(stream_read, "usable_cores", lambda: 2)
    monkeypatch.setattr(stream_read, "PARALLEL_MIN_ROWS", 0)
    judge = make_judge(session, "j1")  # the same judge version
    assert judge.id == judge_id
    pair = make_pair(session, "late", system_a="X", system_b="Y")
    judge_pair(session, judge, pair, "A", 0.75)  # flushed, not committed
    assert stream_read._judgment_ranges(session) == []
    assert len(read(session, judge_id)["soft"]) == 19
