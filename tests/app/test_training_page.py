"""The training page (AppTest) from a fresh database: a new snapshot is made and picked without
an error, and the run picker's labels follow the runs' states. No run is started here
(tests/train/test_jobs.py and the browser journey run real ones); job rows are written directly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from db.models import Snapshot, TrainingJob
from db.session import session_scope
from pipeline.auth import users as auth
from tests.helpers.factories import judge_pair, label_pair, make_judge, make_pair

PAGE = Path(__file__).resolve().parents[2] / "app" / "views" / "training.py"


@pytest.fixture
def admin(sqlite_url):
    with session_scope() as session:
        user = auth.create_user(session, username="ada", password="correct-horse", role="admin")
        judge = make_judge(session, "j1")
        pairs = [make_pair(session, f"t{i}") for i in range(4)]
        for pair, label, confidence in zip(pairs, "ABAB", (0.9, 0.95, 0.6, 0.85), strict=True):
            judge_pair(session, judge, pair, label, confidence)
        label_pair(session, pairs[0], "rita", "B")
        return auth.AuthUser.of(user)


def _page(user) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state["auth_user"] = user
    return at.run()


def _run_picker(at: AppTest):
    (picker,) = [box for box in at.selectbox if box.label == "Follow run"]
    return picker


def test_new_snapshot_is_made_and_picked(admin):
    at = _page(admin)
    assert not at.exception
    assert at.selectbox(key="train_snapshot").value is None  # a fresh database has none
    assert at.button(key="train_start").disabled
    at.button(key="train_make_snapshot").click().run()
    assert not at.exception, at.exception
    with session_scope() as session:
        (snapshot,) = session.query(Snapshot).all()
        # Pair t0 by its human label; t1 (0.95) and t3 (0.85) by the AI; t2 (0.6) is below 0.8.
        assert (snapshot.n_human, snapshot.n_ai) == (1, 2)
    assert at.selectbox(key="train_snapshot").value == snapshot.id
    assert f"Snapshot {snapshot.id}: 1 human + 2 AI labels." in at.success[0].value
    assert not at.button(key="train_start").disabled
    at.run()  # the message was for one run only; the choice stays
    assert not at.success and at.selectbox(key="train_snapshot").value == snapshot.id


def test_run_picker_labels_follow_the_run_state(admin):
    with session_scope() as session:
        session.add(TrainingJob(kind="reward", config={}, created_by="ada", status="queued"))
        # "running" in a process group that exists (this test's), so reconcile() keeps it.
        session.add(
            TrainingJob(
                kind="reward", config={}, created_by="ada", status="running", pid=os.getpgrp()
            )
        )
    at = _page(admin)
    picker = _run_picker(at)
    assert picker.options == ["#2 reward · running", "#1 reward · queued"]
    assert picker.value == 2  # the newest run is followed
    picker.select(1).run()
    with session_scope() as session:
        session.get(TrainingJob, 1).status = "succeeded"
    at.run()
    assert not at.exception
    assert _run_picker(at).options == [
        "#2 reward · running",
        "#1 reward · succeeded",
    ]
    assert _run_picker(at).value == 1
    assert {m.label: m.value for m in at.metric}["Status"] == "succeeded"
