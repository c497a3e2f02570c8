"""Training jobs end to end: real subprocesses in their own process groups, a real SQLite
database, tiny real models. Started, observed and cancelled from the training page (AppTest)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers.train_toys import toy_rows, write_snapshot

PAGE = Path(__file__).resolve().parents[2] / "app" / "views" / "training.py"


@pytest.fixture
def people(sqlite_url):
    from db.session import session_scope
    from pipeline.auth import users as auth

    with session_scope(sqlite_url) as session:
        admin = auth.create_user(session, username="ada", password="correct-horse", role="admin")
        viewer = auth.create_user(session, username="vic", password="correct-horse", role="viewer")
        return auth.AuthUser.of(admin), auth.AuthUser.of(viewer)


@pytest.fixture
def snapshot(sqlite_url, tmp_path):
    """A toy snapshot folder, registered as a Snapshot row as pipeline/train/snapshots.py would."""
    from db.models import Snapshot
    from db.session import session_scope

    folder = write_snapshot(tmp_path / "snap", toy_rows(40))
    with session_scope(sqlite_url) as session:
        session.add(
            Snapshot(
                id="toysnap01",
                rule={},
                n_human=12,
                n_ai=28,
                path=str(folder),
                judge_versions=["toy-judge-v1"],
            )
        )
    return folder


def _wait(job_id: int, statuses: tuple[str, ...], timeout: float = 180.0, metrics: bool = False):
    from db.models import JobMetric, TrainingJob
    from db.session import session_scope

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as session:
            job = session.get(TrainingJob, job_id)
            has_metrics = session.query(JobMetric).filter_by(job_id=job_id).count() > 0
            if job.status in statuses and (has_metrics or not metrics):
                return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not reach {statuses} in {timeout}s")


def _group_gone(pgid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _page(user) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state["auth_user"] = user
    return at


@pytest.mark.slow
def test_start_observe_and_cancel_from_the_page(people, snapshot, tiny_rm):
    admin, _ = people
    at = _page(admin).run()
    assert not at.exception
    at.selectbox(key="train_snapshot").select("toysnap01")
    at.text_input(key="rm_model").input(str(tiny_rm))
    at.number_input(key="rm_epochs").set_value(50.0)  # long enough to be cancelled mid-run
    at.number_input(key="rm_lr").set_value(1e-3)
    at.number_input(key="rm_len").set_value(64)
    at.button(key="train_start").click().run()
    assert not at.exception and "started" in at.success[0].value
    job_id = at.session_state["train_followed"]

    job = _wait(job_id, ("running",), metrics=True)  # the trainer streams metrics in
    at.run()
    status = {m.label: m.value for m in at.metric}
    assert status["Status"] == "running" and int(status["Step"]) > 0

    at.button(key="train_cancel").click().run()
    assert not at.exception
    cancelled = _wait(job_id, ("cancelled",), timeout=5)
    assert cancelled.error == "cancelled by ada"
    assert _group_gone(job.pid), "the job's process group survived the cancel"
    at.run()
    assert {m.label: m.value for m in at.metric}["Status"] == "cancelled"
    assert not [b for b in at.button if b.key == "train_cancel"]


def test_viewer_cannot_start_or_cancel(people, snapshot, sqlite_url):
    from db.models import TrainingJob
    from db.session import session_scope
    from pipeline.train import jobs, runs

    _, viewer = people
    at = _page(viewer).run()
    assert not at.exception
    assert not [b for b in at.button if b.key in ("train_start", "train_make_snapshot")]
    assert "only admins" in at.info[0].value
    # The server-side check, whatever the page shows.
    with pytest.raises(PermissionError, match="vic is a viewer"):
        jobs.start_job("reward", {"snapshot": str(snapshot)}, user=viewer)
    with pytest.raises(PermissionError):
        runs.make_snapshot(viewer)
    with session_scope(sqlite_url) as session:
        assert session.query(TrainingJob).count() == 0
        job = TrainingJob(kind="reward", config={}, created_by="ada", status="queued")
        session.add(job)
        session.flush()
        job_id = job.id
    with pytest.raises(PermissionError):
        jobs.cancel_job(job_id, user=viewer)


@pytest.mark.slow
def test_crashing_job_is_failed_with_its_log(people, snapshot, tmp_path):
    from pipeline.train import jobs

    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()
    (not_a_model / "config.json").write_text("{broken json")
    job_id = jobs.start_job(
        "reward",
        {"snapshot": str(snapshot), "model_name_or_path": str(not_a_model)},
        user=people[0],
    )
    job = _wait(job_id, ("failed", "succeeded"))
    assert job.status == "failed" and job.ended_at is not None
    assert job.error.startswith("exit code 1")
    assert "Traceback" in job.error  # the tail of the log
    assert Path(job.log_path).read_text().count("[job") >= 2


@pytest.mark.slow
def test_cli_runs_a_reward_job_to_success(cli, snapshot, tiny_rm, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        f"snapshot: {snapshot}\nmodel_name_or_path: {tiny_rm}\nlearning_rate: 0.003\n"
        "num_train_epochs: 3\nmax_length: 64\neval_fraction: 0.25\nlogging_steps: 2\n"
    )
    code, out = cli("train", "reward", "--config", config, "--loss-type", "soft")
    assert code == 0, out
    assert "job 1: succeeded" in out
    code, out = cli("jobs", "list", "--json")
    (row,) = json.loads(out)
    assert row["status"] == "succeeded" and row["snapshot_id"] == "toysnap01"
    assert (
        row["final_metrics"]["heldout_accuracy"] > row["final_metrics"]["heldout_accuracy_before"]
    )
    assert Path(row["artifacts"]["model"], "README.md").is_file()
    code, out = cli("jobs", "show", "1", "--json")
    shown = json.loads(out)
    assert shown["config"]["loss_type"] == "soft"
    assert "loss" in shown["latest_metrics"] and "eval_accuracy" in shown["latest_metrics"]
    assert shown["lineage"][1].startswith("snapshot toysnap01: 12 human + 28 AI")
    assert "accelerate launch" in shown["accelerate_command"]
    # A second run never reuses the first one's folder.
    code, out = cli(
        "train", "reward", "--config", config, "--output-dir", row["output_dir"], "--detach"
    )
    assert code == 2 and "not empty" in out
    code, out = cli("jobs", "cancel", "1")
    assert code == 2 and "already succeeded" in out


@pytest.mark.parametrize("late", ["reconcile", "finish"])
def test_a_cancel_is_never_overwritten_by_a_check_made_before_it(people, db_url, monkeypatch, late):
    """The page's reconcile (a running job whose process is gone is failed) and the
    supervisor's finish both look at the job, then write. A cancel committed between the look
    and the write (the browser journey saw "#2 ppo · failed" after its Cancel click) must
    stay: the writes are conditional on the status they looked at."""
    from sqlalchemy import update

    from db.models import TrainingJob
    from db.session import session_scope
    from pipeline.train import jobs

    with session_scope(db_url) as session:
        job = TrainingJob(kind="ppo", config={}, created_by="ada", status="running", pid=0)
        session.add(job)
        session.flush()
        job_id = job.id

    def cancel_in_between() -> None:  # what the Cancel click does, from another session
        with session_scope(db_url) as other:
            cancel = update(TrainingJob).where(TrainingJob.id == job_id)
            other.execute(cancel.values(status="cancelled", error="cancelled by ada"))

    if late == "reconcile":
        monkeypatch.setattr(jobs, "_group_alive", lambda pid: cancel_in_between() or False)
        with session_scope(db_url) as session:
            jobs.reconcile(session)
    else:
        monkeypatch.setattr(jobs, "log_tail", lambda path: cancel_in_between() or "")
        monkeypatch.setenv("RLAIF_DATABASE_URL", db_url)
        jobs._finish(job_id, returncode=-15)
    with session_scope(db_url) as session:
        job = session.get(TrainingJob, job_id)
        assert (job.status, job.error) == ("cancelled", "cancelled by ada")
    with pytest.raises(Exception, match="already cancelled"):
        jobs.cancel_job(job_id, operator="ada", url=db_url)
