"""Sign-in journeys in a real browser (issue 11, journeys 1 and 7), each on `rlaif app` with a
fresh database: what a person sees, what the database holds, and no CSP refusals in the console."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from db.models import HumanLabel, User, UserSession
from db.session import session_scope
from pipeline.auth import sessions
from pipeline.auth import users as auth
from tests.helpers.browser_harness import (
    console_errors,
    failure_artifacts,
    new_chromium,
    open_page,
    save_screenshot,
    sign_in,
    start_app,
    text_appears,
    wait_for,
    wait_idle,
)
from tests.helpers.scenarios import build_example

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(sqlite_url, rlaif_home, tmp_path):
    build_example(sqlite_url)  # pairs, labels and two judges: the alignment page draws charts
    with session_scope() as session:
        auth.create_user(session, username="root", password="root-password", role="admin")
        auth.create_user(session, username="rita", password="rita-password", role="reviewer")
    with start_app(rlaif_home, sqlite_url, tmp_path) as url:
        yield url


def heading_appears(driver, text: str, seconds: float = 60) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    wait_for(driver, seconds).until(
        ec.presence_of_element_located((By.XPATH, f"//h1[contains(normalize-space(.), '{text}')]"))
    )


def charts_drawn(driver) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    wait_for(driver).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".vega-embed svg, .vega-embed canvas"))
    )


def on_sign_in_form(driver, note: str | None = None) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    wait_for(driver).until(ec.url_contains("/signin"))
    wait_for(driver).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "input[aria-label='User name']"))
    )
    if note:
        alert = driver.find_element(By.CSS_SELECTOR, "[role='alert']").text
        assert note in alert, alert


def click_sign_out(driver) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    wait_for(driver).until(
        ec.element_to_be_clickable((By.XPATH, "//button[.//p[text()='Sign out']]"))
    ).click()


def open_sessions(username: str) -> int:
    with session_scope() as session:
        user_id = session.scalar(select(User.id).where(User.username == username))
        rows = session.scalars(select(UserSession).where(UserSession.user_id == user_id)).all()
    return sum(1 for r in rows if r.revoked_at is None)


def test_sign_in_survives_reload_tabs_and_deep_links(server, browser, cli):
    url = server
    with failure_artifacts(browser, "auth_journey_1"):
        # A deep link opened while signed out lands on that page after sign-in.
        sign_in(browser, f"{url}/alignment", "rita", "rita-password")
        heading_appears(browser, "Alignment")
        assert browser.current_url == f"{url}/alignment"
        cookie = browser.get_cookie(sessions.COOKIE_NAME)
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
        assert len(cookie["value"]) == 43 and open_sessions("rita") == 1
        # Reload: still signed in, same page; its charts draw under the CSP (no eval).
        browser.refresh()
        heading_appears(browser, "Alignment")
        text_appears(browser, "Signed in as")
        charts_drawn(browser)
        # A second tab, and a deep link typed while signed in.
        first = browser.current_window_handle
        browser.switch_to.new_window("tab")
        browser.get(f"{url}/browse")
        text_appears(browser, "Signed in as")
        heading_appears(browser, "Browse")
        assert open_sessions("rita") == 1  # the same session: no second sign-in
        # Streamlit itself works under the CSP: charts, fonts, styles, the websocket.
        # (Streamlit probes /<page>/_stcore/health for a base path first: those 404s are its own.)
        errors = [e for e in console_errors(browser) if "/_stcore/" not in e]
        assert not errors, "\n".join(errors)
        # Sign out in the second tab ends the first tab too.
        click_sign_out(browser)
        on_sign_in_form(browser, "You are signed out.")
        assert open_sessions("rita") == 0
        browser.switch_to.window(first)
        open_page(browser, "queue")  # the next thing the first tab does
        on_sign_in_form(browser, "Your session has ended")
        # A password reset ends an open session: Rita's tab can no longer label.
        sign_in(browser, f"{url}/queue", "rita", "rita-password")
        text_appears(browser, "(id ")
        wait_idle(browser)
        code, out = cli("users", "set", "rita", "--reset-password", input="fresh-password\n" * 2)
        assert code == 0, out
        _click(browser, "A is better")
        on_sign_in_form(browser, "Your session has ended")
        save_screenshot(browser, "auth_journey_1")
    with session_scope() as session:  # the click after the reset saved nothing
        assert "rita" not in set(session.scalars(select(HumanLabel.annotator)).all())
    assert open_sessions("rita") == 0
    assert not [e for e in console_errors(browser) if "Content Security Policy" in e]


def _select(driver, label: str, option: str) -> None:
    """Choose `option` in the Streamlit select box labelled `label`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec

    box = wait_for(driver).until(
        ec.element_to_be_clickable(
            (By.XPATH, f"//div[@data-testid='stSelectbox'][.//p[text()='{label}']]//input")
        )
    )
    box.click()
    box.send_keys(option)
    box.send_keys(Keys.ENTER)
    wait_idle(driver)


def _type(driver, label: str, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec

    field = wait_for(driver).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, f"input[aria-label='{label}']"))
    )
    field.send_keys(text)
    field.send_keys(Keys.ENTER)  # commits the value: a rerun starts; let it finish
    time.sleep(0.5)
    wait_idle(driver)


def _click(driver, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    wait_idle(driver)
    wait_for(driver).until(
        ec.element_to_be_clickable((By.XPATH, f"//button[.//p[text()='{text}']]"))
    ).click()


def test_admin_deactivates_a_reviewer_and_their_session_ends(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    url = server
    reviewer = new_chromium(tmp_path / "reviewer-profile")
    try:
        with (
            failure_artifacts(browser, "auth_journey_7"),
            failure_artifacts(reviewer, "auth_journey_7_reviewer"),
        ):
            sign_in(browser, f"{url}/users", "root", "root-password")
            heading_appears(browser, "Users")
            _type(browser, "User name", "nina")
            _type(browser, "Password", "nina-password")
            _click(browser, "Add user")
            text_appears(browser, "Added nina (reviewer).")
            sign_in(reviewer, url, "nina", "nina-password")
            text_appears(reviewer, "Signed in as nina (reviewer)")
            assert open_sessions("nina") == 1
            # The admin deactivates nina.
            browser.refresh()
            heading_appears(browser, "Users")
            _select(browser, "User", "nina")
            checkbox = browser.find_element(By.XPATH, "//div[@data-testid='stCheckbox']//input")
            if checkbox.is_selected():
                browser.find_element(By.XPATH, "//div[@data-testid='stCheckbox']//label").click()
                wait_idle(browser)
            _click(browser, "Save changes")
            text_appears(browser, "Saved nina.")
            save_screenshot(browser, "auth_journey_7_admin")
            # Nina's open session ends at her next step, and she cannot sign in again.
            open_page(reviewer, "queue")
            on_sign_in_form(reviewer, "Your session has ended")
            save_screenshot(reviewer, "auth_journey_7")
    finally:
        reviewer.quit()
    with session_scope() as session:
        nina = session.scalar(select(User).where(User.username == "nina"))
        assert (nina.role, nina.active) == ("reviewer", False)
    assert open_sessions("nina") == 0


@pytest.fixture
def sso_server(sqlite_url, rlaif_home, tmp_path):
    """`rlaif app` with [auth] settings pointing at a local OpenID provider (oidc-provider-mock,
    which accepts any client and signs in whatever subject is typed; its e-mail claim is the
    subject)."""
    pytest.importorskip("authlib")
    oidc_mock = pytest.importorskip("oidc_provider_mock")
    from tests.helpers.browser_harness import free_port

    with session_scope() as session:
        auth.create_user(
            session,
            username="rita",
            password="rita-password",
            role="reviewer",
            email="Rita@Example.org",
        )
    port = free_port()
    with oidc_mock.run_server_in_thread() as provider:
        rlaif_home.mkdir(parents=True, exist_ok=True)
        (rlaif_home / "secrets.toml").write_text(
            f"""[auth]
redirect_uri = "http://127.0.0.1:{port}/oauth2callback"
cookie_secret = "a-test-cookie-secret-that-is-long-enough"

[auth.corp]
client_id = "rlaif-workbench"
client_secret = "not-checked-by-the-mock"
server_metadata_url = "http://127.0.0.1:{provider.server_port}/.well-known/openid-configuration"
"""
        )
        with start_app(rlaif_home, sqlite_url, tmp_path, port=port) as url:
            yield url


def _sso_as(driver, url: str, email: str) -> None:
    """Open `url` signed out, choose "Sign in with Corp" and sign in at the provider as `email`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    driver.get(url)
    wait_for(driver).until(ec.element_to_be_clickable((By.LINK_TEXT, "Sign in with Corp"))).click()
    subject = wait_for(driver).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "input[name='sub']"))
    )
    subject.send_keys(email)
    driver.find_element(By.XPATH, "//button[normalize-space()='Authorize']").click()


def test_single_sign_on_maps_the_email_to_a_local_user(sso_server, browser):
    url = sso_server
    with failure_artifacts(browser, "auth_sso"):
        _sso_as(browser, f"{url}/alignment", "rita@example.org")  # a deep link, signed out
        text_appears(browser, "Signed in as rita (reviewer)")
        heading_appears(browser, "Alignment")
        assert browser.current_url == f"{url}/alignment"
        cookie = browser.get_cookie(sessions.COOKIE_NAME)
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
        assert browser.get_cookie("_streamlit_user") is None  # only our session counts
        with session_scope() as session:
            via = session.scalars(select(UserSession.via)).all()
        assert via == ["oidc"]
        # Sign-out ends it like any session.
        click_sign_out(browser)
        on_sign_in_form(browser, "You are signed out.")
        assert open_sessions("rita") == 0
        # An e-mail that no user has gets no access.
        _sso_as(browser, f"{url}/signin", "eve@example.org")
        on_sign_in_form(browser, "no access to this workbench")
        save_screenshot(browser, "auth_sso_denied")
    assert open_sessions("rita") == 0
    with session_scope() as session:
        assert len(session.scalars(select(UserSession.id)).all()) == 1
