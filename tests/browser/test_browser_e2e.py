"""End to end in a real browser: sign in, label two pairs with the keyboard, check the database,
keep a screenshot."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import HumanLabel
from db.session import session_scope
from pipeline.auth import users as auth
from tests.helpers.browser_harness import (
    failure_artifacts,
    open_page,
    save_screenshot,
    sign_in,
    start_app,
    text_appears,
    wait_for,
    wait_idle,
)
from tests.helpers.factories import judge_pair, make_judge, make_pair

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(sqlite_url, rlaif_home, tmp_path):
    with session_scope() as session:
        auth.create_user(session, username="rita", password="rita-password", role="reviewer")
        judge = make_judge(session, "j1")
        pairs = [make_pair(session, f"e2e{i}", prompt=f"Browser prompt {i}") for i in range(3)]
        # Queue order: the swap-inconsistent pair, then confidence 0.55, then 0.9.
        judge_pair(session, judge, pairs[0], "A", 0.9)
        judge_pair(session, judge, pairs[1], "B", 0.55)
        judge_pair(session, judge, pairs[2], "A", 0.8, swap_inconsistent=True)
        expected = [pairs[2].id, pairs[1].id]
    with start_app(rlaif_home, sqlite_url, tmp_path) as url:
        # No admin existed, so the first `rlaif app` created one and saved its password.
        assert any(rlaif_home.glob("admin-password*.txt"))
        yield url, expected


def test_sign_in_and_label_two_pairs_with_the_keyboard(server, browser):
    url, expected = server
    with failure_artifacts(browser, "browser_e2e"):
        sign_in(browser, url, "rita", "rita-password")
        open_page(browser, "queue")
        for key, label, pair_id in (("a", "A", expected[0]), ("b", "B", expected[1])):
            text_appears(browser, f"(id {pair_id},")
            _press(browser, key, f"Pair {pair_id} labelled {label}.")
    print(f"screenshot: {save_screenshot(browser, 'browser_e2e_queue')}")
    with session_scope() as session:
        labels = session.execute(
            select(
                HumanLabel.pair_id, HumanLabel.label, HumanLabel.annotator, HumanLabel.source
            ).order_by(HumanLabel.id)
        ).all()
    assert [tuple(row) for row in labels] == [
        (expected[0], "A", "rita", "app"),
        (expected[1], "B", "rita", "app"),
    ]


def _labels() -> int:
    with session_scope() as session:
        return len(session.scalars(select(HumanLabel.id)).all())


def _press(browser, key: str, expect: str) -> None:
    """Press `key` once the page is idle; press again only if no label reached the database
    (a key pressed while the page was still mounting its shortcut handlers is lost)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    before = _labels()
    for _attempt in range(3):
        wait_for(browser).until(
            ec.element_to_be_clickable((By.XPATH, "//button[.//p[text()='Skip']]"))
        )
        wait_idle(browser)
        ActionChains(browser).send_keys(key).perform()
        try:
            text_appears(browser, expect, seconds=10)
            return
        except TimeoutException:
            if _labels() != before:
                raise
    raise AssertionError(f"pressing {key!r} never recorded a label")
