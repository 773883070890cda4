"""The built book and the GT explorer notebook in a real browser (headless Chromium, Selenium).

* The book (Jupyter Book, ``-W``) is built from the notebooks executed by this test session (so
  no notebook runs twice), or taken from ``$SALRANK_BUILT_BOOK`` (a ``_build/html`` folder, e.g.
  from ``make book``) when that is set. Pages are opened from ``file://`` URLs with the network
  unused: any failed resource load, any script or stylesheet from another host and any console
  error fails the test.
* Equations are typeset by the MathJax copy served from the build (``mjx-container`` elements, no
  raw ``\\(`` left).
* The live GT explorer (Vega-Lite, no kernel): the gamma slider and the method selector are
  moved as a reader would, and the ranks drawn on the image equal ``salrank.gt.rank_objects`` at
  the same gamma and beta for real SALICON images.
* ``notebooks/gt_explorer.ipynb`` in a real JupyterLab server: run all cells, move the widget
  explorer's gamma slider, check that the picture and the score table were redrawn (catches
  ipywidgets/JupyterLab mismatches that a papermill run cannot see).

Chromium and its driver come from Debian's packages (``chromium``, ``chromium-driver``); the
fixture installs them with apt-get when they are missing and it can (root), else skips.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from notebook_runner import NOTEBOOK_DIR, REPO

TABLE_PAGE = "table2"  # a page the paper presents as a table
FALLBACK_TABLE_PAGE = "data_overview"
EXPLORER_PAGE = "gt_explorer"
MATH_PAGES = ("gt_explorer", "fig9")  # pages with equations in their text
LAB_TIMEOUT_S = 300  # JupyterLab start + run all cells of gt_explorer.ipynb

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
def built_book(tmp_path_factory, request):
    toc = yaml.safe_load((REPO / "book" / "_toc.yml").read_text())
    given = os.environ.get("SALRANK_BUILT_BOOK")
    if given:
        html = Path(given)
        assert (html / "index.html").exists(), f"SALRANK_BUILT_BOOK={given} holds no built book"
        return html, toc
    notebook_runner = request.getfixturevalue("notebook_runner")
    root = tmp_path_factory.mktemp("book-build")
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"  # notebooks come executed from this session
    (root / "_config.yml").write_text(yaml.safe_dump(config))
    book = root / "book"
    shutil.copytree(REPO / "book", book, symlinks=True, ignore=shutil.ignore_patterns("_build", "notebooks"))
    (book / "notebooks").mkdir()
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


def _chrome(chromium, profile_dir: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = chromium
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
        f"--user-data-dir={profile_dir}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_script_timeout(60)
    return driver


@pytest.fixture(scope="module")
def driver(chromium, tmp_path_factory):
    driver = _chrome(chromium, tmp_path_factory.mktemp("chrome-profile"))
    yield driver
    driver.quit()


def _wait(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


_EXTERNAL = """return [...document.querySelectorAll('script[src], link[rel=stylesheet][href], img[src]')]
  .map(e => e.getAttribute('src') || e.getAttribute('href'))
  .filter(u => /^(https?:)?\\/\\//.test(u));"""


def _open(driver, url: str) -> list[dict]:
    """Open ``url``; return the console entries logged while loading it, after checking that the
    page asked no other host for a script, stylesheet or image."""
    driver.get(url)
    _wait(lambda: driver.execute_script("return document.readyState") == "complete", 60, "the page to load")
    external = driver.execute_script(_EXTERNAL)
    assert not external, f"{url}: resources from other hosts (not offline): {external}"
    return driver.get_log("browser")


def _errors(logs) -> list[dict]:
    """Console errors, failed resource loads included (the book must work offline)."""
    return [e for e in logs if e["level"] == "SEVERE"]


def _page(html: Path, name: str) -> str:
    return (html / "notebooks" / f"{name}.html").as_uri()


def test_book_renders_in_chromium(driver, built_book, tmp_path):
    from selenium.webdriver.common.by import By

    html, toc = built_book
    # the landing page
    logs = _open(driver, (html / "intro.html").as_uri())
    driver.save_screenshot(str(tmp_path / "landing.png"))
    assert "salrank" in driver.title
    assert driver.find_elements(By.CSS_SELECTOR, "nav.bd-docs-nav a"), "no navigation sidebar"
    assert not _errors(logs), _errors(logs)

    # a table page: its tables are visible and wide ones scroll instead of being cut off
    pages = _toc_notebooks(toc)
    page = TABLE_PAGE if TABLE_PAGE in pages else FALLBACK_TABLE_PAGE
    logs = _open(driver, _page(html, page))
    driver.save_screenshot(str(tmp_path / "table.png"))
    tables = driver.find_elements(By.CSS_SELECTOR, "article table")
    assert tables and tables[0].is_displayed(), f"{page}: no visible table"
    assert len(tables[0].find_elements(By.CSS_SELECTOR, "tr")) >= 2
    assert "Sample result" in driver.page_source
    assert not _errors(logs), _errors(logs)
    cut = driver.execute_script("""
        const article = document.querySelector('article').getBoundingClientRect();
        return [...document.querySelectorAll('article .cell_output table')].filter(t => {
          const box = t.getBoundingClientRect();
          let scrolls = false;
          for (let p = t.parentElement; p && p.tagName !== 'ARTICLE'; p = p.parentElement) {
            const s = getComputedStyle(p).overflowX;
            if ((s === 'auto' || s === 'scroll') && p.getBoundingClientRect().right <= article.right + 1) scrolls = true;
          }
          return box.right > article.right + 1 && !scrolls;
        }).length;""")
    assert cut == 0, f"{page}: {cut} wide table(s) cut off at the article's edge"
    for shot in ("landing.png", "table.png"):
        assert (tmp_path / shot).stat().st_size > 10_000  # a real screenshot, not a blank


def test_results_at_a_glance(driver, built_book):
    from selenium.webdriver.common.by import By

    html, _ = built_book
    logs = _open(driver, (html / "results.html").as_uri())
    assert not _errors(logs), _errors(logs)
    rows = driver.find_elements(By.CSS_SELECTOR, "table.salrank-headlines tbody tr")
    assert rows, "Results at a glance shows no headline"
    first = [c.text for c in rows[0].find_elements(By.CSS_SELECTOR, "td")]
    assert len(first) == 6 and first[4] in ("sample", "full")
    link = rows[0].find_element(By.CSS_SELECTOR, "td a").get_attribute("href")
    assert link.endswith(".html") and Path(link.removeprefix("file://").split("#")[0]).exists()


@pytest.mark.parametrize("page", MATH_PAGES)
def test_equations_typeset_offline(driver, built_book, page):
    html, toc = built_book
    if page not in _toc_notebooks(toc):
        pytest.skip(f"{page} is not in the book")
    logs = _open(driver, _page(html, page))
    mathjax = driver.execute_script("return [...document.scripts].map(s => s.src).filter(s => /mathjax/i.test(s));")
    assert mathjax and all(s.startswith("file://") for s in mathjax), mathjax
    count = _wait(lambda: driver.execute_script(
        "return window.MathJax && MathJax.startup && MathJax.startup.promise ? "
        "document.querySelectorAll('mjx-container').length : 0"), 30, "MathJax output")
    # every math element was typeset: no TeX delimiters left in the visible text
    _wait(lambda: driver.execute_script("return document.querySelectorAll('mjx-container').length") >= count, 5, "")
    text = driver.execute_script("return document.querySelector('article').innerText")
    assert "\\(" not in text and "\\[" not in text and "$$" not in text, "raw TeX left on the page"
    assert count >= 3
    logs += driver.get_log("browser")
    assert not _errors(logs), _errors(logs)


# --- the live GT explorer -------------------------------------------------------------------------------


def _explorer_ranks(driver) -> dict[int, int]:
    labels = driver.execute_script(
        "return [...document.querySelectorAll('.salrank-explorer [aria-label^=\"box \"]')]"
        ".map(e => e.getAttribute('aria-label'));")
    ranks = {}
    for label in labels:  # "box K: rank R"
        box, rank = label.removeprefix("box ").split(": rank ")
        ranks[int(box)] = int(rank)
    return ranks


def _set_control(driver, name: str, value, event: str) -> None:
    """Set a bound control as a user would (the DOM value, then the browser event vega listens
    to), then wait until the chart has re-run."""
    driver.execute_async_script(
        """const [name, value, event, done] = arguments;
        const root = document.querySelector('.salrank-explorer');
        const input = root.querySelector(`[name="${name}"]`);
        input.value = value;
        input.dispatchEvent(new Event(event, {bubbles: true}));
        root.salrankView.runAsync().then(() => done(true));""",
        name, value, event)


def test_explorer_sliders_rank_like_rank_objects(driver, built_book, tmp_path):
    from salrank.data.scenes import open_dataset
    from salrank.gt import DEFAULT_BETA, rank_objects

    html, toc = built_book
    if EXPLORER_PAGE not in _toc_notebooks(toc):
        pytest.skip("the explorer page is not in the book")
    logs = _open(driver, _page(html, EXPLORER_PAGE))
    _wait(lambda: driver.execute_script(
        "const e = document.querySelector('.salrank-explorer'); return e && e.getAttribute('data-ready');"),
        30, "the explorer to render")
    assert not _errors(logs), _errors(logs)
    options = driver.execute_script(
        "return [...document.querySelectorAll('.salrank-explorer select[name=image] option')].map(o => o.value);")
    examples = open_dataset("salicon-examples", "all")
    real = [o for o in options if o.startswith("salicon-examples/")]
    assert real, f"no real SALICON image offered: {options[:3]}"

    def expected(label, method, gamma, beta=DEFAULT_BETA):
        stem = label.split(": ", 1)[1]
        fx = examples.fixations[stem]
        _, ranks = rank_objects(fx.points, examples.boxes_of(stem), fx.image_size, method, gamma, beta)
        return dict(enumerate(ranks.tolist()))

    gammas = (0.0, 0.35, 1.0)
    # the real image whose ranking gamma changes the most (so the slider visibly matters)
    label = max(real, key=lambda o: len({tuple(expected(o, "ra-srgt", g).values()) for g in gammas}))
    _set_control(driver, "image", label, "change")
    assert _explorer_ranks(driver) == expected(label, "ra-srgt", 0.2)  # the page's defaults
    seen = set()
    for gamma in gammas:
        _set_control(driver, "gamma", gamma, "input")
        shown = _explorer_ranks(driver)
        assert shown == expected(label, "ra-srgt", gamma), f"gamma = {gamma}"
        seen.add(tuple(shown.values()))
    driver.save_screenshot(str(tmp_path / "explorer.png"))
    assert len(seen) > 1 or all(len({tuple(expected(o, "ra-srgt", g).values()) for g in gammas}) == 1 for o in real)
    _set_control(driver, "beta", 1.5, "input")
    assert _explorer_ranks(driver) == expected(label, "ra-srgt", 1.0, 1.5)
    for method in ("points", "map-max", "binary-map"):
        _set_control(driver, "method", method, "change")
        assert _explorer_ranks(driver) == expected(label, method, 1.0, 1.5), method
    assert not _errors(driver.get_log("browser"))


# --- the widget explorer in JupyterLab ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(NOTEBOOK_DIR / f"{EXPLORER_PAGE}.ipynb", root)
    port, token = _free_port(), secrets.token_hex(16)
    lab = Path(sys.executable).with_name("jupyter-lab")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "SALRANK_PROFILE": "sample", "JUPYTER_CONFIG_DIR": str(root / ".jupyter-config")}
    log = open(root / "lab.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [str(lab), "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--expose-app-in-browser", "--LabApp.news_url=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        def up():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return proc.poll() is not None
        _wait(up, 60, "JupyterLab to listen")
        assert proc.poll() is None, (root / "lab.log").read_text()[-3000:]
        yield f"http://127.0.0.1:{port}/lab/tree/{EXPLORER_PAGE}.ipynb?token={token}", root
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_widget_explorer_redraws_in_jupyterlab(chromium, jupyterlab, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, root = jupyterlab
    driver = _chrome(chromium, tmp_path / "profile")
    start = time.monotonic()
    try:
        driver.get(url)
        _wait(lambda: driver.execute_script(
            "return !!(window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell'))"), 90,
            "JupyterLab to open the notebook")
        _wait(lambda: driver.execute_script(
            "const w = jupyterapp.shell.currentWidget;"
            "return !!(w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
            " && w.sessionContext.session.kernel.connectionStatus === 'connected');"), 90, "the kernel")
        driver.execute_script("jupyterapp.commands.execute('notebook:run-all-cells');")
        slider_css = ".jp-OutputArea .widget-slider"
        budget = max(30.0, LAB_TIMEOUT_S - (time.monotonic() - start))
        _wait(lambda: driver.find_elements(By.CSS_SELECTOR, slider_css), budget, "the widget explorer to display")
        # wait until every cell ran (no "[*]" prompt left), so the kernel is free for the slider
        _wait(lambda: driver.execute_script(
            "return ![...document.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'))"),
            max(30.0, LAB_TIMEOUT_S - (time.monotonic() - start)), "all cells to finish")
        failed = driver.execute_script(
            "return [...document.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText)"
            ".filter(t => t.includes('Traceback'));")
        assert not failed, [t[:1000] for t in failed]
        driver.save_screenshot(str(tmp_path / "lab-before.png"))

        def state():
            return driver.execute_script("""
                const area = document.querySelector('.jp-OutputArea .widget-slider').closest('.jp-OutputArea-output');
                area.scrollIntoView({block: 'center'});
                const img = area.querySelector('img');
                const html = area.querySelector('.widget-html-content table');
                const readout = area.querySelector('.widget-slider .widget-readout');
                return [img && img.src, html && html.textContent, readout && readout.textContent.trim()];""")

        before = state()
        assert before[0] and before[1] and before[2] == "0.20", before
        # move gamma (the first slider) as a user does: focus its handle, press the arrow key
        handle = driver.find_elements(By.CSS_SELECTOR, slider_css)[0].find_element(By.CSS_SELECTOR, ".noUi-handle")
        handle.click()
        for _ in range(6):
            handle.send_keys(Keys.ARROW_RIGHT)
        _wait(lambda: state()[2] != before[2] and state()[0] != before[0] and state()[1] != before[1], 60,
              "the picture and the table to redraw")
        after = state()
        driver.save_screenshot(str(tmp_path / "lab-after.png"))
        assert float(after[2]) > 0.2
        # the table shows the scores at the new gamma: the redraw used the slider's value
        assert "score" in after[1] and after[1] != before[1]
    finally:
        driver.quit()
    assert time.monotonic() - start < LAB_TIMEOUT_S + 60


def test_built_explorer_has_data_for_both_sets(built_book):
    """The page embeds per-box data of the real SALICON examples and of SynthSal scenes."""
    html, toc = built_book
    if EXPLORER_PAGE not in _toc_notebooks(toc):
        pytest.skip("the explorer page is not in the book")
    page = (html / "notebooks" / f"{EXPLORER_PAGE}.html").read_text(encoding="utf-8")
    assert "salrank-explorer" in page and "salrank-vega.js" in page
    assert (html / "_static" / "salrank-vega.js").stat().st_size > 100_000
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    start = page.index("var spec = ") + len("var spec = ")
    spec = json.JSONDecoder().raw_decode(page[start:])[0]
    values = [d for d in _datasets(spec) if d and "share" in d[0]]
    assert values
    images = {row["image"].split("/", 1)[0] for row in values[0]}
    assert {"salicon-examples", "synthsal"} <= images
    shares = np.array([row["share"] for row in values[0]])
    assert ((shares >= 0) & (shares <= 1)).all()


def _datasets(spec) -> list[list[dict]]:
    """The inline datasets (lists of records) anywhere in a Vega-Lite spec."""
    found = []
    if isinstance(spec, dict):
        for value in spec.values():
            found += _datasets(value)
    elif isinstance(spec, list):
        if spec and all(isinstance(v, dict) for v in spec) and "image" in spec[0]:
            found.append(spec)
        else:
            for value in spec:
                found += _datasets(value)
    return found
