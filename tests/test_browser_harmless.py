"""In a real browser (Debian chromium): a reviewer rates responses with the keys h, x and s on
the Rate responses page, then reads the harmless rates on the Win rates page; a viewer's key
presses write nothing."""

from __future__ import annotations

import time

import pytest
from browser_harness import (
    failure_artifacts,
    new_chromium,
    open_page,
    sign_in,
    start_app,
    wait_idle,
)
from factories import make_judge, make_pair
from journey_steps import press, screenshot, shows
from selenium.webdriver.common.action_chains import ActionChains
from sqlalchemy import func, select

from db.harmless import VerdictRow, upsert_harmless_judgments
from db.models import HarmlessAudit, HarmlessLabel
from db.session import session_scope
from pipeline.auth import users as auth

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "harmless-password"


@pytest.fixture
def server(sqlite_url, rlaif_home, tmp_path):
    with session_scope() as session:
        for name, role in (("rita", "reviewer"), ("vic", "viewer")):
            auth.create_user(session, username=name, password=PASSWORD, role=role)
        judge = make_judge(session, "harm-1", params={"task": "harmless"})
        rows = []
        for i, p in enumerate((0.9, 0.8, 0.2)):
            texts = (f"prompt {i}", f"P says {i}", f"Q says {i}")
            pair = make_pair(session, f"p{i}", *texts, system_a="P", system_b="Q")
            verdict = "harmless" if p > 0.5 else "harmful"
            rows.append(VerdictRow(pair.response_a_id, verdict, p, max(p, 1 - p), 0.9, "ok"))
        upsert_harmless_judgments(session, judge_version_id=judge.id, rows=rows)
    with start_app(rlaif_home, sqlite_url, tmp_path) as url:
        yield url


def _actions(annotator: str) -> int:
    with session_scope() as session:
        return session.scalar(
            select(func.count()).select_from(HarmlessAudit).where(HarmlessAudit.actor == annotator)
        )


def _shown(driver) -> int:
    return int(shows(driver, r"response id (\d+) ·").group(1))


def test_rate_by_keyboard_then_read_the_harmless_rate(server, browser, tmp_path):
    with failure_artifacts(browser, "browser_harmless"):
        sign_in(browser, server, "rita", PASSWORD)
        open_page(browser, "rate_responses")
        shows(browser, r"0 of 3 responses of P rated by someone")
        screenshot(browser, "browser_harmless_card")  # one response with the judge's verdict
        seen = []
        for key, done in (("h", "rated harmless"), ("x", "rated harmful"), ("s", "skipped")):
            seen.append(_shown(browser))
            press(browser, key, lambda: _actions("rita"))
            # The rating is in the database before the page has rerun: read the next card
            # only once the run that confirms this one has finished.
            shows(browser, rf"Response {seen[-1]} {done}\.")
            wait_idle(browser)
        shows(browser, "Nothing left for you to rate in this system")
        screenshot(browser, "browser_harmless_rate")
        open_page(browser, "win_rates")
        shows(browser, "Harmless rate")
        # The order is fixed: response 5 (judge: harmful) comes first and rita calls it harmless,
        # then response 1 (judge: harmless), which she calls harmful: they never agree.
        assert seen == [5, 1, 3]
        shows(browser, r"agreement with people 0\.0% on 2 people-rated responses")
        screenshot(browser, "browser_harmless_win_rates")
    with session_scope() as session:
        labels = session.execute(
            select(HarmlessLabel.response_id, HarmlessLabel.label, HarmlessLabel.source)
            .where(HarmlessLabel.annotator == "rita")
            .order_by(HarmlessLabel.id)
        ).all()
        skipped = session.scalars(
            select(HarmlessAudit.response_id).where(HarmlessAudit.kind == "skip")
        ).all()
    assert [tuple(row) for row in labels] == [
        (seen[0], "harmless", "app"),
        (seen[1], "harmful", "app"),
    ]
    assert skipped == [seen[2]] and len(set(seen)) == 3


def test_a_viewers_keys_write_nothing(server, tmp_path):
    driver = new_chromium(tmp_path / "viewer-profile")
    try:
        with failure_artifacts(driver, "browser_harmless_viewer"):
            sign_in(driver, server, "vic", PASSWORD)
            open_page(driver, "rate_responses")
            shows(driver, "You are a viewer")
            for key in "hxs":
                ActionChains(driver).send_keys(key).perform()
            time.sleep(2)
            assert _actions("vic") == 0
    finally:
        driver.quit()
