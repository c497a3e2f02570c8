"""The journeys people take, in a real browser (Debian chromium), on one `rlaif app` started on a
fresh database for this module. The journeys run in file order and build on each other as a
team's day does: label in the queue, correct a label in Browse, check a spot-check sample,
read the alignment, then train on the labels. Each asserts on what the page shows and on the
database, and saves a screenshot of its last state (artifacts/journey_*.png)."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import func, select

from db.models import (
    AuditSample,
    AuditSampleItem,
    HumanLabel,
    JobMetric,
    LabelAudit,
    Pair,
    Snapshot,
    TrainingJob,
)
from db.session import session_scope, upgrade_database
from pipeline.auth import users as auth
from tests.helpers.browser_harness import (
    failure_artifacts,
    new_chromium,
    open_page,
    sign_in,
    start_app,
    wait_for,
    wait_idle,
)
from tests.helpers.factories import judge_pair, label_pair, make_judge, make_pair
from tests.helpers.journey_steps import (
    choose,
    click,
    metric,
    metric_shows,
    page_text,
    pick,
    picked,
    picks,
    press,
    rlaif_json,
    screenshot,
    shows,
    table_when,
    type_into,
    write_area,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "journey-password"
# Queue pairs judged by j1, most urgent (lowest confidence) first.
QUEUE = [("q0", "A", 0.55), ("q1", "B", 0.6), ("q2", "A", 0.65), ("q3", "B", 0.7)]
CONFIDENT = [("q4", "A", 0.9), ("q5", "B", 0.92), ("q6", "A", 0.94), ("q7", "B", 0.96)]
SPOT = [("s0", "A", 0.97), ("s1", "B", 0.98), ("s2", "A", 0.99)]  # j2 only: the sample pool
# j3 with human labels already imported: AI A,B,A,B vs people A,A,A,B -> agreement 3/4, and
# kappa (0.75 - 0.5) / (1 - 0.5) = 0.5 (p_e = 3/4 * 1/2 + 1/4 * 1/2).
IMPORTED = [("a0", "A", "A"), ("a1", "B", "A"), ("a2", "A", "A"), ("a3", "B", "B")]


@dataclass(frozen=True)
class App:
    url: str
    db_url: str
    home: Path
    ids: dict[str, int]  # external id -> pair id


def _seed() -> dict[str, int]:
    with session_scope() as session:
        for name, role in (("ada", "admin"), ("rita", "reviewer"), ("rob", "reviewer")):
            auth.create_user(session, username=name, password=PASSWORD, role=role)
        judges = {name: make_judge(session, name) for name in ("j1", "j2", "j3")}
        pairs = {}
        for judge, rows in (("j1", QUEUE + CONFIDENT), ("j2", SPOT)):
            for external_id, label, confidence in rows:
                prompt = "Which zebra runs faster?" if external_id == "q5" else None
                pair = make_pair(session, external_id, prompt=prompt or f"Prompt {external_id}")
                judge_pair(session, judges[judge], pair, label, confidence)
                pairs[external_id] = pair
        for external_id, ai, human in IMPORTED:
            pair = make_pair(session, external_id, prompt=f"Prompt {external_id}")
            judge_pair(session, judges["j3"], pair, ai, 0.9)
            label_pair(session, pair, "imported-team", human, source="import")
            pairs[external_id] = pair
        return {external_id: pair.id for external_id, pair in pairs.items()}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    home = tmp_path_factory.mktemp("journeys")
    db_url = f"sqlite:///{home / 'journeys.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RLAIF_HOME", str(home))
        env.setenv("RLAIF_DATABASE_URL", db_url)
        upgrade_database(db_url)
        ids = _seed()
        with start_app(home, db_url, home) as url:
            yield App(url, db_url, home, ids)


@pytest.fixture
def second_browser(tmp_path):
    """Another reviewer's browser: its own chromium and profile, so no shared cookies."""
    driver = new_chromium(tmp_path / "second-profile")
    try:
        yield driver
    finally:
        driver.quit()


def _count(model, *where) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _shown_pair(driver) -> int:
    return int(shows(driver, r"\(id (\d+), source").group(1))


def test_review_queue_by_keyboard_and_a_second_reviewer(app, browser, second_browser):
    ids = app.ids
    with (
        failure_artifacts(browser, "journey_queue"),
        failure_artifacts(second_browser, "journey_queue_rob"),
    ):
        sign_in(browser, app.url, "rita", PASSWORD)
        open_page(browser, "queue")
        assert _shown_pair(browser) == ids["q0"]  # the lowest confidence first
        # Rob opens the queue while Rita holds q0: he is shown the next pair, not hers.
        sign_in(second_browser, app.url, "rob", PASSWORD)
        open_page(second_browser, "queue")
        assert _shown_pair(second_browser) == ids["q1"]
        seen = []
        for key, label in (("a", "A"), ("b", "B"), ("t", "tie")):
            seen.append(_shown_pair(browser))
            press(browser, key, lambda: _count(HumanLabel, HumanLabel.annotator == "rita"))
            # The label is in the database before the page has rerun: read the next card only
            # once the run that confirms this label has finished.
            shows(browser, rf"Pair {seen[-1]} labelled {label}\.")
            wait_idle(browser)
        screenshot(browser, "journey_queue")
    # Rob still holds q1, so Rita's third pair was q3, not q1.
    assert seen == [ids["q0"], ids["q2"], ids["q3"]]
    with session_scope() as session:
        labels = session.execute(
            select(HumanLabel.pair_id, HumanLabel.label, HumanLabel.source)
            .where(HumanLabel.annotator == "rita")
            .order_by(HumanLabel.id)
        ).all()
    assert [tuple(row) for row in labels] == [
        (ids["q0"], "A", "app"),
        (ids["q2"], "B", "app"),
        (ids["q3"], "tie", "app"),
    ]
    assert _count(HumanLabel, HumanLabel.annotator == "rob") == 0


def _open_in_browse(driver, pair_id: int) -> None:
    open_page(driver, "browse")
    type_into(driver, "browse_text", "zebra")
    shows(driver, r"\b1 pairs match")
    table_when(driver, 0, lambda rows: [row["external id"] for row in rows] == ["q5"])
    pick(driver, "browse_open", str(pair_id))
    shows(driver, r"Pair q5 \(id \d+\)")


def test_browse_search_override_and_a_stale_override(app, browser, second_browser):
    pair_id = app.ids["q5"]
    with (
        failure_artifacts(browser, "journey_browse"),
        failure_artifacts(second_browser, "journey_browse_rob"),
    ):
        sign_in(browser, app.url, "rita", PASSWORD)
        _open_in_browse(browser, pair_id)
        # Rob opens the same pair before Rita saves: he decides on version 1.
        sign_in(second_browser, app.url, "rob", PASSWORD)
        _open_in_browse(second_browser, pair_id)

        choose(browser, f"override_label_{pair_id}", "B")
        write_area(browser, f"override_reason_{pair_id}", "A misnames the zebra")
        click(browser, f"override_save_{pair_id}")
        shows(browser, r"Label set to B\.")

        choose(second_browser, f"override_label_{pair_id}", "tie")
        write_area(second_browser, f"override_reason_{pair_id}", "both are fine")
        click(second_browser, f"override_save_{pair_id}")
        message = shows(second_browser, r".*changed after you opened it.*").group(0)
        assert "rita set it to B" in message
        click(second_browser, f"browse_reload_{pair_id}")
        shows(second_browser, r"version 2")
        history = table_when(second_browser, -1, lambda rows: len(rows) == 2)  # the last table
        screenshot(second_browser, "journey_browse")
    assert [(h["kind"], h["actor"], h["to"], h["reason"]) for h in history] == [
        ("override", "rita", "B", "A misnames the zebra"),
        ("override_refused", "rob", "tie", "stale version 1: both are fine"),
    ]
    with session_scope() as session:
        pair = session.get(Pair, pair_id)
        assert (pair.override_label, pair.version) == ("B", 2)
        kinds = session.scalars(
            select(LabelAudit.kind).where(LabelAudit.pair_id == pair_id).order_by(LabelAudit.id)
        ).all()
    assert kinds == ["override", "override_refused"]


def test_spot_check_draw_label_and_progress(app, browser):
    with failure_artifacts(browser, "journey_spot_check"):
        sign_in(browser, app.url, "rita", PASSWORD)
        open_page(browser, "audit")
        pick(browser, "audit_judge", "j2")
        type_into(browser, "audit_size", "3")
        click(browser, "audit_draw")
        shows(browser, r"Drew 3 pairs")
        shows(browser, r"0 of 3 labelled")
        click(browser, "audit_label_sample")
        shows(browser, r"Labelling spot-check sample #1 only\.")
        labelled = []
        for key in "ab":
            labelled.append(_shown_pair(browser))
            press(browser, key, lambda: _count(HumanLabel, HumanLabel.annotator == "rita"))
        open_page(browser, "audit")
        shows(browser, r"2 of 3 labelled")
        table_when(browser, 0, lambda rows: [row["labelled"] for row in rows] == ["2/3"])
        screenshot(browser, "journey_spot_check")
    # The sample is the whole j2 pool (3 pairs); its pairs come most urgent first.
    assert labelled == [app.ids["s0"], app.ids["s1"]]
    with session_scope() as session:
        (sample,) = session.scalars(select(AuditSample)).all()
        items = set(session.scalars(select(AuditSampleItem.pair_id)))
        done = session.scalars(
            select(HumanLabel.pair_id).where(HumanLabel.pair_id.in_(items))
        ).all()
    assert (sample.size, sample.created_by) == (3, "rita")
    assert items == {app.ids[s] for s, _, _ in SPOT} and sorted(done) == sorted(labelled)


def test_alignment_equals_the_cli(app, browser):
    expected = {row["judge"]: row for row in rlaif_json(app.db_url, app.home, "metrics", "--json")}
    assert set(expected) == {"j1", "j2", "j3"}
    assert (expected["j3"]["agreement"], expected["j3"]["cohen_kappa"]) == (0.75, 0.5)
    with failure_artifacts(browser, "journey_alignment"):
        sign_in(browser, app.url, "rob", PASSWORD)
        open_page(browser, "alignment")
        shows(browser, r"Agreement with the humans")
        shows(browser, r"Cohen κ · j3")
        for judge, row in expected.items():
            for title, column in (("Agreement", "agreement"), ("Cohen κ", "cohen_kappa")):
                value = row[column]
                want = "–" if value is None else f"{value:.3f}"
                assert metric(browser, f"{title} · {judge}") == want, (judge, column)
        assert metric(browser, "Agreement · j3") == "0.750"
        assert metric(browser, "Cohen κ · j3") == "0.500"
        screenshot(browser, "journey_alignment")


def _job(job_id: int) -> TrainingJob:
    with session_scope() as session:
        job = session.get(TrainingJob, job_id)
        session.expunge(job)
        return job


def _group_gone(pgid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def test_training_snapshot_reward_run_then_a_cancelled_ppo_run(app, browser, tiny_rm, tiny_lm):
    with failure_artifacts(browser, "journey_training"):
        sign_in(browser, app.url, "ada", PASSWORD)
        open_page(browser, "training")
        shows(browser, r"No training runs yet")
        click(browser, "train_make_snapshot")  # crashed the page before (issue 11)
        made = shows(browser, r"Snapshot (\w+): (\d+) human \+ (\d+) AI labels\.")
        assert "This app has encountered an error" not in page_text(browser)
        with session_scope() as session:
            (snapshot,) = session.scalars(select(Snapshot)).all()
            assert made.groups() == (snapshot.id, str(snapshot.n_human), str(snapshot.n_ai))
        assert snapshot.n_human >= 4 and snapshot.n_ai >= 4  # j3's imports; j1/j2 at >= 0.8
        assert snapshot.id in picked(browser, "train_snapshot")  # the new one is picked

        type_into(browser, "rm_model", str(tiny_rm))
        type_into(browser, "rm_len", "64")
        type_into(browser, "rm_steps", "10")
        click(browser, "train_start")
        shows(browser, r"Job 1 started\.")
        # Nobody touches the page: the picker itself turns to succeeded.
        picks(browser, "train_follow", "#1 reward · succeeded", seconds=240)
        metric_shows(browser, "Status", "succeeded")
        chart = (By.CSS_SELECTOR, "[data-testid='stVegaLiteChart']")
        # Loss and pairwise accuracy; they are drawn after the status, so wait for them.
        wait_for(browser).until(lambda d: len(d.find_elements(*chart)) >= 2)
        assert len(browser.find_elements(*chart)) == 2
        reward = _job(1)
        assert reward.status == "succeeded" and reward.snapshot_id == snapshot.id
        assert _count(JobMetric, JobMetric.job_id == 1, JobMetric.name == "loss") >= 2

        choose(browser, "train_kind", "PPO policy")
        type_into(browser, "ppo_policy", str(tiny_lm))
        assert "job 1" in picked(browser, "ppo_rm")  # the reward model just trained
        type_into(browser, "ppo_episodes", "2000")
        click(browser, "train_start")
        shows(browser, r"Job 2 started\.")
        picks(browser, "train_follow", "#2 ppo · running")
        click(browser, "train_cancel")
        picks(browser, "train_follow", "#2 ppo · cancelled")
        metric_shows(browser, "Status", "cancelled")
        screenshot(browser, "journey_training")
    ppo = _job(2)
    assert (ppo.kind, ppo.status, ppo.error) == ("ppo", "cancelled", "cancelled by ada")
    assert ppo.parent_job_id == 1 and ppo.config["reward_model"] == reward.artifacts["model"]
    assert _group_gone(ppo.pid), "the cancelled run's process group survived"
    assert re.search(r"\[job 2\]", Path(ppo.log_path).read_text())
