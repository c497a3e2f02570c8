"""The evaluate button on a finished PPO run, in a real browser (Debian chromium) on `rlaif app`:
an admin starts the evaluation, the job runs in its own process (tiny real models), and the page
shows the win rate with the judge's re-validation note; a reviewer sees no button but reads the
same figures."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from db.models import Evaluation, TrainingJob
from db.session import get_sessionmaker, session_scope, upgrade_database
from pipeline.auth import users as auth
from tests.helpers.browser_harness import (
    failure_artifacts,
    new_chromium,
    open_page,
    sign_in,
    start_app,
)
from tests.helpers.eval_runs import finished_ppo_run, judge_file, tiny_policy
from tests.helpers.journey_steps import (
    click,
    metric,
    metric_shows,
    page_text,
    pick,
    screenshot,
    shows,
    type_into,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "evaluate-password"
BUTTON = "Evaluate against the base policy"


@pytest.fixture
def app(tmp_path, tiny_lm, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    db_url = f"sqlite:///{home / 'evaluate.db'}"
    monkeypatch.setenv("RLAIF_HOME", str(home))
    monkeypatch.setenv("RLAIF_DATABASE_URL", db_url)
    upgrade_database(db_url)
    with session_scope() as session:
        for name, role in (("ada", "admin"), ("rita", "reviewer")):
            auth.create_user(session, username=name, password=PASSWORD, role=role)
    policy = tiny_policy(tmp_path / "run" / "policy")
    with get_sessionmaker(db_url)() as session:
        ppo_id = finished_ppo_run(session, policy, tiny_lm, tmp_path)
    with start_app(home, db_url, home) as url:
        yield url, ppo_id, judge_file(tmp_path, tiny_lm)


@pytest.fixture
def second_browser(tmp_path):
    driver = new_chromium(tmp_path / "second-profile")
    try:
        yield driver
    finally:
        driver.quit()


def _buttons(driver, label: str) -> list:
    return driver.find_elements(By.XPATH, f"//button[normalize-space()='{label}']")


def test_admin_evaluates_a_ppo_run_and_a_reviewer_reads_it(app, browser, second_browser):
    url, ppo_id, judge = app
    with failure_artifacts(browser, "evaluate_admin"):
        sign_in(browser, url, "ada", PASSWORD)
        open_page(browser, "training")
        shows(browser, r"Evaluation: did training help\?")
        shows(browser, r"Not evaluated yet\.")
        type_into(browser, f"eval_judge_{ppo_id}", str(judge))
        click(browser, f"eval_start_{ppo_id}")
        job_id = int(shows(browser, r"Evaluation job (\d+) started").group(1))
        # Nobody touches the page: it reruns when the job ends and shows the figures.
        metric_shows(browser, "Human-labelled pairs", "0", seconds=300)
        assert "This app has encountered an error" not in page_text(browser)
        with session_scope() as session:
            job = session.get(TrainingJob, job_id)
            assert (job.kind, job.status, job.parent_job_id) == ("evaluate", "succeeded", ppo_id)
            evaluation = session.get(Evaluation, job.artifacts["evaluation_id"])
            rate, lc = evaluation.result["ai_win_rate"], evaluation.result["lc_win_rate"]
            assert evaluation.status == "succeeded" and evaluation.result["pairs"] == 4
        assert metric(browser, "AI win rate") == f"{rate:.1%}"
        assert metric(browser, "Length-controlled") == f"{lc:.1%}"
        assert metric(browser, "PPI-corrected") == "–"
        # The judge's re-validation: no human-labelled pairs yet, said beside the figures.
        shows(browser, r"tiny-judge has no human-labelled pairs")
        shows(browser, r"Judge alignment when evaluated: agreement – on 0 human-labelled pairs")
        shows(browser, rf"Evaluation {evaluation.id} · judge tiny-judge · 4 pairs")
        screenshot(browser, "evaluate_admin")

    with failure_artifacts(second_browser, "evaluate_reviewer"):
        sign_in(second_browser, url, "rita", PASSWORD)
        open_page(second_browser, "training")
        shows(second_browser, r"only admins start or cancel them")
        # The newest run is the evaluation job; the reviewer follows the PPO run.
        pick(second_browser, "train_follow", f"#{ppo_id} ppo")
        metric_shows(second_browser, "AI win rate", f"{rate:.1%}")
        shows(second_browser, r"tiny-judge has no human-labelled pairs")
        assert not _buttons(second_browser, BUTTON)
        screenshot(second_browser, "evaluate_reviewer")
