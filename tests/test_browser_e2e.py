"""End to end in a real browser: `rlaif app` on a free loopback port, Debian chromium driven by
selenium; sign in, label two pairs with the keyboard, check the database, keep a screenshot."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from factories import judge_pair, make_judge, make_pair
from sqlalchemy import select

from db.models import HumanLabel
from db.session import session_scope
from pipeline import auth

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rlaif app exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("rlaif app did not become healthy")


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
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "rlaif"), "app", "--port", str(port)],
        cwd=tmp_path,  # not the repository: the command must find the app by itself
        env={**os.environ, "RLAIF_HOME": str(rlaif_home), "RLAIF_DATABASE_URL": sqlite_url},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        # No admin existed, so the first `rlaif app` created one and saved its password.
        assert (rlaif_home / "admin-password.txt").exists()
        yield url, expected
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def browser(tmp_path):
    if not (shutil.which("chromium") and Path(CHROMEDRIVER).exists()):
        pytest.skip("Debian chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--window-size=1500,1100",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_sign_in_and_label_two_pairs_with_the_keyboard(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, expected = server
    wait = WebDriverWait(browser, 60)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        _drive(browser, wait, url, expected, ActionChains, By, ec)
    except Exception:
        browser.save_screenshot(str(ARTIFACTS / "browser_e2e_failure.png"))
        (ARTIFACTS / "browser_e2e_failure.html").write_text(browser.page_source)
        raise
    shot = ARTIFACTS / "browser_e2e_queue.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
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


def _drive(browser, wait, url, expected, ActionChains, By, ec) -> None:  # noqa: N803

    def text_appears(text: str) -> None:
        wait.until(
            ec.presence_of_element_located(
                (By.XPATH, f"//p[contains(normalize-space(.), '{text}')]")
            )
        )

    browser.get(url)
    name = wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "input[aria-label='User name']"))
    )
    name.send_keys("rita")
    browser.find_element(By.CSS_SELECTOR, "input[aria-label='Password']").send_keys("rita-password")
    browser.find_element(By.XPATH, "//button[.//p[text()='Sign in']]").click()
    text_appears("Signed in as")

    wait.until(
        ec.element_to_be_clickable(
            (By.CSS_SELECTOR, "a[data-testid='stSidebarNavLink'][href$='/queue']")
        )
    ).click()
    for key, label, pair_id in (("a", "A", expected[0]), ("b", "B", expected[1])):
        text_appears(f"(id {pair_id},")
        _press(browser, wait, ActionChains, By, ec, key, f"Pair {pair_id} labelled {label}.")


def _labels() -> int:
    with session_scope() as session:
        return len(session.scalars(select(HumanLabel.id)).all())


def _press(browser, wait, ActionChains, By, ec, key, expect) -> None:  # noqa: N803
    """Press `key` once the page is idle; press again only if no label reached the database
    (a key pressed while the page was still mounting its shortcut handlers is lost)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    before = _labels()
    for _attempt in range(3):
        wait.until(ec.element_to_be_clickable((By.XPATH, "//button[.//p[text()='Skip']]")))
        wait.until(
            ec.invisibility_of_element_located((By.CSS_SELECTOR, "[data-testid='stStatusWidget']"))
        )
        ActionChains(browser).send_keys(key).perform()
        try:
            WebDriverWait(browser, 10).until(
                ec.presence_of_element_located(
                    (By.XPATH, f"//p[contains(normalize-space(.), '{expect}')]")
                )
            )
            return
        except TimeoutException:
            if _labels() != before:
                raise
    raise AssertionError(f"pressing {key!r} never recorded a label")
