"""In a real browser (Debian chromium): a reviewer rates responses with the keys h, x and s on
the Rate responses page, then reads the harmless rates on the Win rates page; a viewer's key
presses write nothing; untrusted text (prompt, response, system and judge names, the judge's
error) makes the browser fetch nothing on either page."""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from sqlalchemy import func, select

from db.harmless import VerdictRow, upsert_harmless_judgments
from db.models import HarmlessAudit, HarmlessLabel
from db.session import session_scope
from pipeline.auth import users as auth
from tests.browser.test_browser_journeys_untrusted import long, short
from tests.helpers.browser_harness import (
    failure_artifacts,
    new_chromium,
    open_page,
    sign_in,
    start_app,
)
from tests.helpers.factories import make_judge, make_pair
from tests.helpers.journey_steps import expand_all, press, screenshot, shows
from tests.helpers.untrusted import Recorder, recording_server

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


def _shown(driver, seen: list[int]) -> int:
    """The response on the card once it is a new one (the last card lingers while the page
    reruns after a key press)."""
    fresh = "".join(f"(?!{n} ·)" for n in seen)
    return int(shows(driver, rf"response id {fresh}(\d+) ·").group(1))


def test_rate_by_keyboard_then_read_the_harmless_rate(server, browser, tmp_path):
    with failure_artifacts(browser, "browser_harmless"):
        sign_in(browser, server, "rita", PASSWORD)
        open_page(browser, "rate_responses")
        shows(browser, r"0 of 3 responses of P rated by someone")
        screenshot(browser, "browser_harmless_card")  # one response with the judge's verdict
        seen = []
        for key, done in (("h", "rated harmless"), ("x", "rated harmful"), ("s", "skipped")):
            seen.append(_shown(browser, seen))
            press(browser, key, lambda: _actions("rita"))
            shows(browser, rf"Response {seen[-1]} {done}\.")
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


@pytest.fixture
def recorder():
    with recording_server() as url:
        yield url


def test_untrusted_text_makes_the_browser_fetch_nothing(sqlite_url, rlaif_home, tmp_path, recorder):
    u = recorder
    with session_scope() as session:
        auth.create_user(session, username="ada", password=PASSWORD, role="admin")
        system = f"sys {short(u + '/system')}"
        judge = make_judge(session, f"harm {short(u + '/judge')}", params={"task": "harmless"})
        pair = make_pair(
            session,
            "evil",
            f"Prompt {long(u + '/prompt')}",
            f"Answer {long(u + '/response')}",
            "other",
            system_a=system,
            system_b="zed",  # sorts after: the page opens on the hostile system
        )
        failed = VerdictRow(pair.response_a_id, None, None, None, None, "failed", long(u + "/err"))
        upsert_harmless_judgments(session, judge_version_id=judge.id, rows=[failed])
    driver = new_chromium(tmp_path / "untrusted-profile")
    try:
        with (
            start_app(rlaif_home, sqlite_url, tmp_path) as url,
            failure_artifacts(driver, "browser_harmless_untrusted"),
        ):
            sign_in(driver, url, "ada", PASSWORD)
            open_page(driver, "rate_responses")
            shows(driver, r"0 of 1 responses of sys")
            shows(driver, r"error: ")
            expand_all(driver)
            open_page(driver, "win_rates")
            shows(driver, r"has no people-rated responses")
            expand_all(driver)
            time.sleep(2)  # anything lazy would have loaded by now
            screenshot(driver, "browser_harmless_untrusted")
            assert Recorder.requests == []
            driver.get(f"{recorder}/control")  # the control: the recorder does see this browser
            assert "GET /control" in Recorder.requests
    finally:
        driver.quit()
