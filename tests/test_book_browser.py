"""The built book renders in a real browser.

Builds the book (Jupyter Book, ``-W``) from the notebooks executed by this test session (so no
notebook runs twice), opens the landing page and a table page in headless Chromium through
Selenium, takes screenshots, and checks that the page has its title, that the table page shows
a table, and that the browser console logged no errors.

Chromium and its driver come from Debian's packages (``chromium``, ``chromium-driver``); the
fixture installs them with apt-get when they are missing and it can (root), else skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from notebook_runner import NOTEBOOK_DIR, REPO

TABLE_PAGE = "table2"  # a page the paper presents as a table
FALLBACK_TABLE_PAGE = "data_overview"

pytestmark = pytest.mark.notebooks


def _toc_notebooks(toc: dict) -> list[str]:
    files = []
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
    return [f.split("/", 1)[1] for f in files if f.startswith("notebooks/")]


@pytest.fixture(scope="module")
def chromium():
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.skip("chromium/chromedriver missing and cannot be installed here (need root + apt-get)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], check=True, env=env, capture_output=True
        )
        browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return browser, driver


@pytest.fixture(scope="module")
def built_book(tmp_path_factory, notebook_runner):
    root = tmp_path_factory.mktemp("book-build")
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"  # notebooks come executed from this session
    (root / "_config.yml").write_text(yaml.safe_dump(config))
    book = root / "book"
    shutil.copytree(REPO / "book", book, symlinks=True, ignore=shutil.ignore_patterns("_build", "notebooks"))
    (book / "notebooks").mkdir()
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    for name in _toc_notebooks(toc):
        executed = notebook_runner.run(NOTEBOOK_DIR / f"{name}.ipynb")
        shutil.copy(executed, book / "notebooks" / f"{name}.ipynb")
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jb), "build", str(book), "--warningiserror", "--keep-going"], capture_output=True, text=True, cwd=root
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    html = root / "_build" / "html"
    assert (html / "index.html").exists()
    return html, toc


def _open(driver, url):
    driver.get(url)
    return driver.get_log("browser")


def _errors(logs) -> list[dict]:
    """Console errors, except failed loads of external CDN resources (MathJax, widget managers):
    the test machine may be offline, and those resources are optional for the page."""
    return [
        e
        for e in logs
        if e["level"] == "SEVERE"
        and not (e.get("source") == "network" and e["message"].startswith("https://"))
    ]


def test_book_renders_in_chromium(chromium, built_book, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    browser, driver_path = chromium
    html, toc = built_book
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        # the landing page
        logs = _open(driver, (html / "intro.html").as_uri())
        driver.save_screenshot(str(tmp_path / "landing.png"))
        assert "salrank" in driver.title
        assert driver.find_elements(By.CSS_SELECTOR, "nav.bd-docs-nav a"), "no navigation sidebar"
        assert not _errors(logs), _errors(logs)

        # a table page
        pages = _toc_notebooks(toc)
        page = TABLE_PAGE if TABLE_PAGE in pages else FALLBACK_TABLE_PAGE
        logs = _open(driver, (html / "notebooks" / f"{page}.html").as_uri())
        driver.save_screenshot(str(tmp_path / "table.png"))
        tables = driver.find_elements(By.CSS_SELECTOR, "article table")
        assert tables and tables[0].is_displayed(), f"{page}: no visible table"
        assert len(tables[0].find_elements(By.CSS_SELECTOR, "tr")) >= 2
        assert "Sample result" in driver.page_source
        assert not _errors(logs), _errors(logs)
    finally:
        driver.quit()
    for shot in ("landing.png", "table.png"):
        assert (tmp_path / shot).stat().st_size > 10_000  # a real screenshot, not a blank
