"""In a real browser: a reviewer opens Win rates, picks two systems and spot-checks their
comparison; the sample lands in the database with pairs of that comparison only."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import AuditSample, AuditSampleItem, Pair
from db.session import get_sessionmaker, session_scope
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
from tests.helpers.scenarios import build_rankings

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(sqlite_url, rlaif_home, tmp_path):
    with get_sessionmaker(sqlite_url)() as session:
        build_rankings(session)  # systems X, Y, Z; commits
    with session_scope() as session:
        auth.create_user(session, username="rita", password="rita-password", role="reviewer")
    with start_app(rlaif_home, sqlite_url, tmp_path) as url:
        yield url


def choose(driver, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label` from the keyboard: type it, press
    Enter. A mouse click on the opened list can land outside the window when the box sits
    near the bottom of the page (CI saw "element click intercepted" at y=1113 of 1100)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec

    wait_idle(driver)
    selector = f"input[role='combobox'][aria-label='{label}']"
    box = wait_for(driver).until(ec.element_to_be_clickable((By.CSS_SELECTOR, selector)))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", box)
    box.click()
    box.send_keys(option)
    wait_for(driver).until(
        ec.presence_of_element_located(
            (By.XPATH, f"//*[@role='option'][normalize-space(.)='{option}']")
        )
    )
    box.send_keys(Keys.ENTER)
    wait_idle(driver)
    wait_for(driver).until(
        lambda d: d.find_element(By.CSS_SELECTOR, selector).get_attribute("value") == option
    )


def test_pick_two_systems_and_spot_check_them(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    with failure_artifacts(browser, "browser_win_rates"):
        sign_in(browser, server, "rita", "rita-password")
        open_page(browser, "win_rates")
        text_appears(browser, "Bradley-Terry log-strengths")
        choose(browser, "System", "Y")
        choose(browser, "Opponent", "Z")
        text_appears(browser, "against Z: 6 pairs with a valid AI label")
        wait_for(browser).until(
            ec.element_to_be_clickable(
                (By.XPATH, "//button[.//p[text()='Spot-check this comparison']]")
            )
        ).click()
        text_appears(browser, "Drew 6 pairs")
    print(f"screenshot: {save_screenshot(browser, 'browser_win_rates')}")
    with session_scope() as session:
        sample = session.scalars(select(AuditSample)).one()
        systems = session.execute(
            select(Pair.system_a, Pair.system_b)
            .join(AuditSampleItem, AuditSampleItem.pair_id == Pair.id)
            .where(AuditSampleItem.sample_id == sample.id)
        ).all()
    assert sample.created_by == "rita" and "Y vs Z" in sample.name
    assert len(systems) == 6 and all(set(pair) == {"Y", "Z"} for pair in systems)
