"""The Training page's evaluation section (AppTest): a finished PPO run shows its evaluation's
figures with the judge's alignment and warnings beside them; only admins get the button.
Job and evaluation rows are written directly (tests/evaluation/test_evaluate.py runs real
evaluations)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.render import inline_text
from db.models import Evaluation, TrainingJob
from db.session import session_scope
from pipeline.auth import users as auth
from tests.helpers.factories import judge_pair, make_judge, make_pair

PAGE = Path(__file__).resolve().parents[2] / "app" / "views" / "training.py"
NO_HUMANS = "judge j1 has no human-labelled pairs: its verdict is not validated against people"


@pytest.fixture
def run(sqlite_url, tmp_path):
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "lineage.json").write_text(json.dumps({"base_policy": "smollm2"}))
    with session_scope() as session:
        users = {
            role: auth.AuthUser.of(
                auth.create_user(session, username=role, password="correct-horse", role=role)
            )
            for role in ("admin", "viewer")
        }
        job = TrainingJob(
            kind="ppo", status="succeeded", config={}, created_by="admin",
            artifacts={"policy": str(policy)},
        )  # fmt: skip
        session.add(job)
        session.flush()
        judge = make_judge(session, "j1")
        # P (in either slot) wins 3 of 4: 75 %.
        for i, (slot, label) in enumerate([("A", "A"), ("B", "B"), ("A", "A"), ("B", "A")]):
            a, b = ("P", "B0") if slot == "A" else ("B0", "P")
            pair = make_pair(session, f"e{i}", source="evaluation:1", system_a=a, system_b=b)
            judge_pair(session, judge, pair, label)
        session.add(
            Evaluation(
                policy="P", policy_path=str(policy), policy_job_id=job.id, baseline="B0",
                baseline_path="smollm2", judge_version_id=judge.id, pair_source="evaluation:1",
                prompt_source="-", n_prompts=4, decoding={}, status="succeeded",
                alignment={"judge": "j1", "human_pairs": 0, "agreement": None, "kappa": None,
                           "warnings": [NO_HUMANS]},
                created_by="admin",
            )
        )  # fmt: skip
    return users


def _page(user) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state["auth_user"] = user
    return at.run()


def test_the_run_shows_its_evaluation_with_the_judge_warning(run):
    at = _page(run["viewer"])
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["AI win rate"] == "75.0%"
    assert metrics["Human-labelled pairs"] == "0"
    assert metrics["PPI-corrected"] == "–"
    # Markdown sources: the page escapes every punctuation mark of untrusted text.
    assert any(inline_text(NO_HUMANS) in w.value for w in at.warning)
    assert any("agreement – on 0 human-labelled pairs" in c.value for c in at.caption)
    assert not [b for b in at.button if b.label == "Evaluate against the base policy"]


def test_admins_get_the_evaluate_button(run):
    at = _page(run["admin"])
    assert not at.exception, at.exception
    assert [b for b in at.button if b.label == "Evaluate against the base policy"]
