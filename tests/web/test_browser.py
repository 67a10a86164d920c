"""The UI in a real headless browser (Debian's chromium through chromedriver and Selenium) on a live
local cell (``corral up``: a master and two agents, real processes on 127.0.0.1).

One journey, bounded: sign in, load every page, follow a job from the list to its tasks, read a
pending reason, open a machine, kill a job from the UI (confirming) and see it end without a full
reload. Screenshots go to the test's temporary directory. Skips when chromium, chromedriver or
selenium is missing; nothing here downloads a browser or a driver.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import Cell, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the test extra pins selenium
    webdriver = None

pytestmark = pytest.mark.skipif(
    webdriver is None or CHROMIUM is None or DRIVER is None,
    reason="needs selenium (the test extra) and Debian's chromium and chromium-driver (apt-get install chromium "
           "chromium-driver; .ci/run installs them)")


@pytest.fixture
def browser(tmp_path):
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium'}", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def live_cell(tmp_path):
    cell = Cell(tmp_path / "c")
    (tmp_path / "c").mkdir()
    try:
        yield cell.start()
    finally:
        cell.stop()
    assert not cell.leftovers(), cell.leftovers()


def shoot(driver, tmp_path: Path, name: str) -> None:
    path = tmp_path / "screenshots" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 0


def text_of(driver, css: str) -> str:
    """The text of every match, read in one go (the live part may be swapped in between two reads)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText).join(' | ')", css)


def test_a_user_follows_a_job_to_its_tasks_reads_a_pending_reason_and_kills_a_job(live_cell, browser, tmp_path):
    cell, driver = live_cell, browser
    wait = WebDriverWait(driver, 20, poll_frequency=0.2)
    for name, fields in (("sleeper", {"tasks": 2, "command": "sleep", "args": ["300"]}),
                         ("huge", {"command": "sleep", "args": ["300"], "resources": {"cpu": "64", "memory": "32Mi"}})):
        done = cell.corral("submit", cell.spec(name, **fields))
        assert done.returncode == 0, done.stderr
    user = cell.api("/jobs")["jobs"][0]["user"]
    sleeper, huge = f"sleeper.{user}", f"huge.{user}"
    wait_until(lambda: all(t["state"] == "running" for t in cell.tasks(sleeper)), 30, "sleeper's tasks to run")

    driver.get(cell.url + "/ui/jobs")  # not signed in: the login form, then back here
    wait.until(lambda d: d.find_elements(By.NAME, "token"))
    driver.find_element(By.NAME, "token").send_keys(cell.token)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait.until(lambda d: d.current_url.endswith("/ui/jobs") and sleeper in text_of(d, "table.jobs"))
    shoot(driver, tmp_path, "jobs")

    driver.find_element(By.LINK_TEXT, sleeper).click()  # from the list to the job and its tasks
    wait.until(lambda d: text_of(d, "table.tasks tbody .state") == "running | running")
    assert len(driver.find_elements(By.CSS_SELECTOR, "table.tasks tbody tr")) == 2
    shoot(driver, tmp_path, "job")

    driver.find_element(By.CSS_SELECTOR, "table.tasks tbody a[href^='/ui/machines/']").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.per-band") and sleeper in text_of(d, "table.tasks"))
    shoot(driver, tmp_path, "machine")

    driver.get(cell.url + "/ui/jobs?state=pending")
    wait.until(lambda d: huge in text_of(d, "table.jobs") and sleeper not in text_of(d, "table.jobs"))
    driver.find_element(By.LINK_TEXT, huge).click()
    reason = wait.until(lambda d: text_of(d, "table.tasks .reason"))
    assert "machines are available" in reason and "insufficient cpu" in reason, reason

    driver.get(cell.url + "/ui/cell")
    wait.until(lambda d: "machines are available" in text_of(d, "table.pending"))
    assert len(driver.find_elements(By.CSS_SELECTOR, "table.machines tbody tr")) == 2
    shoot(driver, tmp_path, "cell")
    driver.get(cell.url + "/ui/users")
    wait.until(lambda d: user in text_of(d, "table.users"))
    shoot(driver, tmp_path, "users")

    driver.get(cell.url + f"/ui/jobs/{sleeper}")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "form.kill button"))
    # usage over time, from the agents' poll answers: a line per task in each chart
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "figure.chart polyline")) == 4)
    driver.execute_script("window.stillHere = true")  # gone if the page fully reloads
    driver.find_element(By.CSS_SELECTOR, "form.kill button").click()
    alert = wait.until(lambda d: d.switch_to.alert)
    assert alert.text.startswith(f"Kill job {sleeper}?")
    alert.accept()
    wait.until(lambda d: "killed" in text_of(d, "#flash"))
    wait.until(lambda d: "killed" in text_of(d, "#live p.summary .state"))  # the live part caught up
    wait_until(lambda: cell.api(f"/jobs/{sleeper}")["state"] == "killed", 10, "the job to end")
    wait.until(lambda d: text_of(d, "table.tasks tbody .state") == "killed | killed")
    assert driver.execute_script("return window.stillHere") is True
    assert int(driver.execute_script("return document.body.dataset.refreshes || 0")) >= 1
    shoot(driver, tmp_path, "killed")
    assert len(list((tmp_path / "screenshots").glob("*.png"))) == 6
