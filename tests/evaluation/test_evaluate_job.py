"""The evaluation as a job, end to end: started as the Training page's button starts it (a
TrainingJob of kind "evaluate", pipeline/evaluation/evaluate_job.start_for_run), run by the job
supervisor in its own process group (the real subprocess, tiny real models), and cancelled
midway. tests/test_evaluate.py covers the figures in-process; here the subject is the job."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from db.enums import ACTIVE_JOB_STATUSES
from db.models import AuditSampleItem, Evaluation, Judgment, Pair, TrainingJob
from db.session import session_scope
from pipeline.auth import users as auth
from pipeline.evaluation.evaluate_job import evaluations_for_run, start_for_run
from pipeline.evaluation.policy_summary import JSON_KEYS
from pipeline.train import jobs, runs
from tests.helpers.eval_runs import HELD_OUT, finished_ppo_run, judge_file, tiny_policy
from tests.helpers.factories import label_pair

pytestmark = pytest.mark.slow


@pytest.fixture
def admin(db_url):
    with session_scope() as session:
        user = auth.create_user(session, username="ada", password="correct-horse", role="admin")
        return auth.AuthUser.of(user)


@pytest.fixture
def reviewer(db_url):
    with session_scope() as session:
        user = auth.create_user(session, username="rita", password="correct-horse", role="reviewer")
        return auth.AuthUser.of(user)


def _wait(job_id: int, done, timeout: float = 300.0):
    """Poll the job's rows until `done(session, job)` holds; the job row, detached."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as session:
            job = session.get(TrainingJob, job_id)
            if done(session, job):
                session.expunge(job)
                return job
        time.sleep(0.5)
    with session_scope() as session:
        job = session.get(TrainingJob, job_id)
        raise AssertionError(f"job {job_id} is {job.status}; log:\n{jobs.log_tail(job.log_path)}")


def _group_gone(pgid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _outcome(label: str, slot: str) -> float:
    """P's outcome on one pair: 1 when the judge picked P's slot, 0.5 a tie, else 0."""
    return 0.5 if label == "tie" else float(label == slot)


def test_the_evaluate_button_runs_a_job_to_success(admin, reviewer, tiny_lm, tmp_path, session,
                                                   cli):  # fmt: skip
    policy = tiny_policy(tmp_path / "run" / "policy")
    ppo_id = finished_ppo_run(session, policy, tiny_lm, tmp_path)
    with pytest.raises(PermissionError, match="rita is a reviewer"):  # admins start, checked here
        start_for_run(ppo_id, user=reviewer)
    assert session.scalar(select(TrainingJob.id).where(TrainingJob.kind == "evaluate")) is None
    job_id = start_for_run(ppo_id, user=admin, n=32, judge=str(judge_file(tmp_path, tiny_lm)))

    job = _wait(job_id, lambda s, j: j.status not in ACTIVE_JOB_STATUSES)
    assert job.status == "succeeded", job.error
    assert (job.kind, job.parent_job_id, job.created_by) == ("evaluate", ppo_id, "ada")
    assert job.config["baseline"] == str(tiny_lm)  # the run's base policy, from its lineage
    log = Path(job.log_path).read_text()
    assert f"[job {job_id}] exited with 0" in log

    # The --json object, written by the job beside result.json.
    shown = json.loads(Path(job.artifacts["summary"]).read_text())
    assert tuple(shown) == JSON_KEYS
    evaluation_id = shown["evaluation_id"]
    assert job.artifacts["evaluation_id"] == evaluation_id
    assert shown["judge"] == "tiny-judge"
    assert shown["policy"].startswith(f"{policy.resolve()}@sha256:")
    assert shown["baseline"].startswith(f"{tiny_lm.resolve()}@sha256:")
    assert shown["pairs"] == len(HELD_OUT) == 4  # n=32, but only four prompts are held out
    assert shown["human_pairs"] == 0
    assert shown["ppi_win_rate"] is None and shown["ppi_interval"] is None
    low, high = shown["ai_interval"]
    assert 0.0 <= low <= shown["ai_win_rate"] <= high <= 1.0
    assert 0.0 <= shown["lc_win_rate"] <= 1.0
    assert any("no human-labelled pairs" in w for w in shown["warnings"])
    stages = {"generation", "judging", "reporting"}
    assert set(shown["seconds"]) == set(shown["cpu_seconds"]) == stages

    session.expire_all()
    evaluation = session.get(Evaluation, evaluation_id)
    assert evaluation.status == "succeeded" and evaluation.policy_job_id == ppo_id
    assert evaluation.snapshot_id == "snap-eval"
    # The policy run links to the evaluation, in its lineage lines and on its page.
    ppo = session.get(TrainingJob, ppo_id)
    assert any(
        line.startswith(f"evaluation {evaluation_id}:") for line in runs.lineage(session, ppo)
    )
    (listed,) = evaluations_for_run(session, ppo_id)
    figures = [k for k in JSON_KEYS if k not in ("seconds", "cpu_seconds")]
    assert {k: listed.as_json()[k] for k in figures} == {k: shown[k] for k in figures}

    # Pairs between the two systems on the held-out prompts, P's slot by a seeded coin: the
    # evaluation's seed 0 draws 0.844, 0.758, 0.421, 0.259 -> P is B, B, A, A (A when < 0.5).
    pairs = list(
        session.scalars(select(Pair).where(Pair.source == evaluation.pair_source).order_by(Pair.id))
    )
    assert [p.prompt.text for p in pairs] == HELD_OUT
    coin = random.Random(0)
    expected_slots = ["A" if coin.random() < 0.5 else "B" for _ in pairs]
    assert expected_slots == ["B", "B", "A", "A"]
    assert [p.meta["policy_slot"] for p in pairs] == expected_slots
    for pair, slot in zip(pairs, expected_slots, strict=True):
        p_system, b_system = (pair.system_a, pair.system_b)[:: 1 if slot == "A" else -1]
        assert (p_system, b_system) == (evaluation.policy, evaluation.baseline)
        assert pair.response_a_id != pair.response_b_id  # the two policies answer differently

    # Judged by the pinned judge version; P's win rate is the mean of its outcomes.
    judged = {
        j.pair_id: j.label
        for j in session.scalars(
            select(Judgment).where(Judgment.judge_version_id == evaluation.judge_version_id)
        )
    }
    assert set(judged) == {p.id for p in pairs}
    outcomes = [_outcome(judged[p.id], p.meta["policy_slot"]) for p in pairs]
    assert shown["ai_win_rate"] == pytest.approx(sum(outcomes) / len(outcomes))

    # Every pair is in the spot-check sample, for the review queue.
    sampled = session.scalars(
        select(AuditSampleItem.pair_id).where(
            AuditSampleItem.sample_id == evaluation.audit_sample_id
        )
    ).all()
    assert sorted(sampled) == [p.id for p in pairs]

    code, out = cli("jobs", "show", str(job_id), "--json")
    assert code == 0, out
    assert json.loads(out)["artifacts"]["evaluation_id"] == evaluation_id

    # Reviewers label the sample: P wins three pairs and loses the last. With every pair
    # labelled, PPI's estimate is the people's mean (its correction term is the judge's mean
    # over the pool minus over the labelled pairs: the same pairs), 3/4.
    for i, pair in enumerate(pairs):
        slot = pair.meta["policy_slot"]
        label_pair(session, pair, "rita", slot if i < 3 else {"A": "B", "B": "A"}[slot])
    session.commit()
    (now,) = evaluations_for_run(session, ppo_id)
    assert now.human_pairs == 4
    assert now.human_win_rate == pytest.approx(0.75)
    assert now.ppi_win_rate == pytest.approx(0.75)
    assert now.ppi_interval[0] <= 0.75 <= now.ppi_interval[1]


def _evaluation_running(session, job) -> bool:
    """The job has written its evaluation row and is generating."""
    ppo_id = job.config["policy_job_id"]
    row = session.scalar(select(Evaluation.id).where(Evaluation.policy_job_id == ppo_id))
    return job.status == "running" and row is not None


def test_cancelling_an_evaluation_midway(admin, tiny_lm, tmp_path, session):
    # A policy that never stops, asked for 2000 tokens on each prompt: minutes of generation.
    policy = tiny_policy(tmp_path / "run" / "policy", endless=True)
    ppo_id = finished_ppo_run(session, policy, tiny_lm, tmp_path)
    config = {
        "policy": f"job:{ppo_id}",
        "baseline": str(tiny_lm),
        "judge": str(judge_file(tmp_path, tiny_lm)),
        "max_new_tokens": 2000,
        "device": "cpu",
        "policy_job_id": ppo_id,
    }
    job_id = jobs.start_job("evaluate", config, user=admin)
    job = _wait(job_id, _evaluation_running, timeout=180)

    assert jobs.cancel_job(job_id, user=admin) == "cancelled"
    assert _group_gone(job.pid), "the evaluation's process group survived the cancel"
    session.expire_all()
    job = session.get(TrainingJob, job_id)
    assert (job.status, job.error) == ("cancelled", "cancelled by ada")
    (evaluation,) = session.scalars(select(Evaluation)).all()
    # Marked cancelled by the job itself on SIGTERM, never left "running", never counted.
    assert evaluation.status == "cancelled"
    assert evaluation.result["error"].startswith("KeyboardInterrupt: cancelled (SIGTERM)")
    assert evaluation.ended_at is not None and evaluation.audit_sample_id is None
    assert evaluations_for_run(session, ppo_id) == []
    assert session.scalar(select(Pair.id).where(Pair.source == evaluation.pair_source)) is None
    assert not (Path(job.output_dir) / "result.json").exists()
