"""What a person does on a page, for the real-browser journeys: find a widget by its Streamlit
key, type, pick, click, press a shortcut, and read back what the page shows (text, metrics,
tables). Signing in and starting the app stay in tests/helpers/browser_harness.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from selenium.common.exceptions import (
    ElementNotInteractableException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec

from tests.helpers.browser_harness import save_screenshot, wait_for, wait_idle


def widget(driver, key: str, css: str = "", seconds: float = 60):
    """The first element matching `css` inside the widget with Streamlit key `key`."""
    selector = f".st-key-{key} {css}".strip()
    return wait_for(driver, seconds).until(ec.element_to_be_clickable((By.CSS_SELECTOR, selector)))


def click(driver, key: str) -> None:
    wait_idle(driver)
    widget(driver, key, "button").click()


def type_into(driver, key: str, text: str, attempts: int = 3) -> None:
    """Replace a text or number input's value and commit it with Enter, as a person does. A
    rerun that redraws the field while we type (stale, or briefly not interactable: seen on
    the Training page's run form) means: find it and type again."""
    for attempt in range(attempts):
        wait_idle(driver)
        try:
            field = widget(driver, key, "input")
            field.send_keys(Keys.CONTROL, "a")
            field.send_keys(Keys.BACKSPACE)
            field.send_keys(text, Keys.ENTER)
            break
        except (StaleElementReferenceException, ElementNotInteractableException):
            if attempt == attempts - 1:
                raise
    wait_idle(driver)


def write_area(driver, key: str, text: str) -> None:
    widget(driver, key, "textarea").send_keys(text)


def pick(driver, key: str, option: str) -> None:
    """Open a select box and click the option whose text contains `option`."""
    wait_idle(driver)
    opener = widget(driver, key, "button[aria-haspopup='listbox']")
    # Centred first, so the list opens inside the window: a box near the bottom of a long
    # page opens it past the edge, where a click is "intercepted".
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", opener)
    opener.click()
    wait_for(driver).until(
        ec.element_to_be_clickable(
            (By.XPATH, f"//*[@role='option'][contains(normalize-space(.), {_xpath(option)})]")
        )
    ).click()
    wait_idle(driver)


def picked(driver, key: str) -> str:
    """The text of the option a select box shows as chosen."""
    return widget(driver, key, "input[role='combobox']").get_attribute("value")


def picks(driver, key: str, option: str, seconds: float = 60) -> None:
    """Wait until the select box `key` shows `option` as chosen, with nobody touching it."""
    seen: list[str] = []

    def check(_driver) -> bool:
        try:
            seen.append(picked(driver, key))
        except StaleElementReferenceException:  # redrawn while we looked
            return False
        return seen[-1] == option

    try:
        wait_for(driver, seconds).until(check)
    except TimeoutException:
        raise AssertionError(f"{key} shows {seen[-1:]}, not {option!r}") from None


def choose(driver, key: str, option: str) -> None:
    """Click a radio option by its text."""
    wait_idle(driver)
    box = widget(driver, key)
    box.find_element(By.XPATH, f".//label[contains(normalize-space(.), {_xpath(option)})]").click()
    wait_idle(driver)


def _xpath(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    return "concat(" + ', "\'", '.join(f"'{part}'" for part in text.split("'")) + ")"


def page_text(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def shows(driver, pattern: str, seconds: float = 60) -> re.Match:
    """Wait until the visible page text matches the regular expression `pattern`."""
    found: list[re.Match] = []

    def seen(_driver) -> bool:
        try:
            match = re.search(pattern, page_text(driver))
        except StaleElementReferenceException:
            return False
        if match:
            found.append(match)
        return bool(match)

    try:
        wait_for(driver, seconds).until(seen)
    except TimeoutException:
        raise AssertionError(f"the page never showed {pattern!r}") from None
    return found[-1]


def metric(driver, label: str) -> str:
    """The value of the st.metric whose label reads `label`."""
    for box in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stMetric']"):
        shown = box.find_element(By.CSS_SELECTOR, "[data-testid='stMetricLabel']").text
        if shown.strip() == label:
            return box.find_element(By.CSS_SELECTOR, "[data-testid='stMetricValue']").text.strip()
    raise AssertionError(f"no metric labelled {label!r}")


def metric_shows(driver, label: str, value: str, seconds: float = 30) -> None:
    """Wait until the metric `label` reads `value` (a fragment redraws it a moment later)."""
    seen: list[str] = []

    def check(_driver) -> bool:
        try:
            seen.append(metric(driver, label))
        except (AssertionError, StaleElementReferenceException):
            return False
        return seen[-1] == value

    try:
        wait_for(driver, seconds).until(check)
    except TimeoutException:
        raise AssertionError(f"metric {label!r} shows {seen[-1:]}, not {value!r}") from None


def table(driver, index: int) -> list[dict[str, str]]:
    """The rows of the `index`-th st.dataframe on the page (negative: from the end), as the
    grid's accessible table lists them: it sits inside the canvas, present but not visible."""
    grids = "[data-testid='stDataFrame'] table[role='grid']"
    wait_for(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, grids)))
    return driver.execute_script(
        """
        const grids = [...document.querySelectorAll(arguments[0])];
        const grid = grids.at(arguments[1]);
        const heads = [...grid.querySelectorAll('thead th')].map(th => th.textContent);
        return [...grid.querySelectorAll('tbody tr')].map(tr => Object.fromEntries(
            [...tr.querySelectorAll('td')].map((td, i) => [heads[i], td.textContent])));
        """,
        grids,
        index,
    )


def table_when(driver, index: int, ready: Callable[[list[dict[str, str]]], bool]):
    """The table's rows once `ready(rows)` holds (a rerun replaces tables a moment later)."""
    seen: list[list[dict[str, str]]] = []

    def check(_driver) -> bool:
        seen.append(table(driver, index))
        return ready(seen[-1])

    try:
        wait_for(driver, 30).until(check)
    except TimeoutException:
        raise AssertionError(f"table {index} never got ready; last seen: {seen[-1:]}") from None
    return seen[-1]


def press(driver, key: str, recorded: Callable[[], int], seconds: float = 10) -> None:
    """Press a shortcut key once the page is idle; press again only if nothing was recorded (a
    key pressed while the page still mounts its shortcut handlers is lost)."""
    before = recorded()
    for _attempt in range(3):
        wait_for(driver).until(
            ec.element_to_be_clickable((By.XPATH, "//button[.//p[text()='Skip']]"))
        )
        wait_idle(driver)
        ActionChains(driver).send_keys(key).perform()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if recorded() != before:
                return
            time.sleep(0.2)
    raise AssertionError(f"pressing {key!r} never recorded anything")


def expand_all(driver) -> None:
    """Open every collapsed expander, so that everything inside is rendered too."""
    for summary in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stExpander'] summary"):
        details = summary.find_element(By.XPATH, "./..")
        if details.get_attribute("open") is None:  # a script click: expanders above may move
            driver.execute_script("arguments[0].click();", summary)
    wait_idle(driver)


def screenshot(driver, name: str) -> Path:
    """The journey's last state, once the page has finished its run (artifacts/<name>.png)."""
    wait_idle(driver)
    time.sleep(0.5)  # let stale elements of the previous run go
    return save_screenshot(driver, name)


def rlaif_json(db_url: str, home: Path, *args: str):
    """`rlaif <args>` as a separate process on the app's database; its JSON output."""
    env = {**os.environ, "RLAIF_DATABASE_URL": db_url, "RLAIF_HOME": str(home)}
    rlaif = str(Path(sys.executable).parent / "rlaif")
    done = subprocess.run([rlaif, *args], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)
