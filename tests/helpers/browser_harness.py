"""Real-browser journeys: `rlaif app` on a free loopback port, Debian chromium driven by selenium.

Every browser test uses these pieces, so that a change in how people sign in or how the app starts
is made once: `start_app` (a context manager), `new_chromium`, `sign_in`, `open_page`,
`text_appears` and `save_screenshot` (artifacts/<name>.png, kept by CI).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--window-size=1500,1100",
)


def free_port() -> int:
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


@contextmanager
def start_app(
    rlaif_home: Path, db_url: str, workdir: Path, extra_env=None, port: int | None = None
) -> Iterator[str]:
    """`rlaif app` on a free port (or `port`), run from `workdir` (not the repository: the command
    must find the app by itself); yields its base URL and stops it afterwards."""
    port = port or free_port()
    log_path = workdir / f"app-{port}.log"
    env = {**os.environ, "RLAIF_HOME": str(rlaif_home), "RLAIF_DATABASE_URL": db_url}
    env.update(extra_env or {})
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "rlaif"), "app", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, process)
            yield url
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def new_chromium(profile_dir: Path):
    """A headless Debian chromium. Under CI a missing browser fails the test, as a missing
    PostgreSQL or Argilla server does; elsewhere it skips."""
    if not (shutil.which("chromium") and Path(CHROMEDRIVER).exists()):
        message = "Debian chromium and chromium-driver are not installed"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    # Console messages (CSP violations among them) for `console_errors`.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_for(driver, seconds: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds)


def text_appears(driver, text: str, seconds: float = 60) -> None:
    """Wait until a paragraph containing `text` is on the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    wait_for(driver, seconds).until(
        ec.presence_of_element_located((By.XPATH, f"//p[contains(normalize-space(.), '{text}')]"))
    )


def sign_in(driver, url: str, username: str, password: str) -> None:
    """Sign in through the form a person sees, and wait for the signed-in sidebar.

    Opening `url` while signed out redirects to the /signin form (app/signin_web.py), which
    comes back to `url` after sign-in: pass a page's address to land on that page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    driver.get(url)
    name = wait_for(driver).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "input[aria-label='User name']"))
    )
    name.clear()
    name.send_keys(username)
    driver.find_element(By.CSS_SELECTOR, "input[aria-label='Password']").send_keys(password)
    driver.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
    text_appears(driver, "Signed in as")


def open_page(driver, path: str) -> None:
    """Click the sidebar link whose address ends in /<path>, as a person would."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    wait_for(driver).until(
        ec.element_to_be_clickable(
            (By.CSS_SELECTOR, f"a[data-testid='stSidebarNavLink'][href$='/{path}']")
        )
    ).click()


def wait_idle(driver) -> None:
    """Wait until the script run that the last action started has finished."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    wait_for(driver).until(
        ec.invisibility_of_element_located((By.CSS_SELECTOR, "[data-testid='stStatusWidget']"))
    )


def console_errors(driver) -> list[str]:
    """Browser console messages at SEVERE level since the last call (e.g. CSP refusals)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def save_screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(shot))
    return shot


@contextmanager
def failure_artifacts(driver, name: str) -> Iterator[None]:
    """On failure, keep a screenshot and the page source under artifacts/<name>_failure.*"""
    try:
        yield
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / f"{name}_failure.png"))
        (ARTIFACTS / f"{name}_failure.html").write_text(driver.page_source)
        raise
