"""Every notebook executes on the sample profile (papermill), so CI catches a broken book page.

Notebooks share the session's cache directory (see conftest.py), as the book build does, so
features, trained sample models and generated sample data are computed once.
"""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest
from notebook_runner import NOTEBOOKS, REPO


def test_there_are_notebooks():
    assert any(nb.name == "data_overview.ipynb" for nb in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell tagged 'parameters' expected"
    assert "profile" in tagged[0].source
    # notebooks are stored without outputs: the book executes them
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path.name} has outputs"


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]


def _is_boilerplate(source: str) -> bool:
    """Only imports (and magics, comments, blank lines): nothing of the paper's computation."""
    lines = [line.strip() for line in source.splitlines()]
    code = [line for line in lines if line and not line.startswith(("#", "%"))]
    return all(line.startswith(("import ", "from ")) or line in (")", "") or line.endswith(",") for line in code)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shows_its_computation(path):
    # a page is the computation the paper describes: at least one code cell beyond the parameters
    # and the imports is shown (not tagged hide-input)
    nb = nbformat.read(path, as_version=4)
    shown = [c for c in _code_cells(nb) if "hide-input" not in c.metadata.get("tags", [])]
    assert any(not _is_boilerplate(c.source) for c in shown), f"{path.name}: every computing cell is hidden"


def test_table2_page_shows_the_switch_table_from_salrank_paper():
    nb = nbformat.read(REPO / "notebooks" / "table2.ipynb", as_version=4)
    shown = [c.source for c in _code_cells(nb) if "hide-input" not in c.metadata.get("tags", [])]
    switch_cells = [s for s in shown if "TABLE2_SWITCHES" in s and "TABLE2_ROWS" in s]
    assert len(switch_cells) == 1 and "from salrank.paper import" in switch_cells[0]
    assert "TABLE2[" in switch_cells[0]  # the paper's numbers beside the switches
    assert any("run_table2(" in s for s in shown)  # and the call that runs the rows


def test_notebooks_pass_ruff():
    # the notebooks' code cells follow the package's lint rules ([tool.ruff] in pyproject.toml)
    try:
        import ruff  # noqa: F401  (installed by the dev extra, as `make test` does)
    except ImportError:
        pytest.fail("ruff is not installed: pip install -e '.[dev]'")
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                          "notebooks"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, f"ruff findings in notebooks/:\n{run.stdout}{run.stderr}"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_on_sample(path, notebook_runner):
    out = notebook_runner.run(path)
    nb = json.loads(out.read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # every page labels sample results as such
    assert "Sample result" in json.dumps(nb), f"{path.name} does not show the sample banner"
    # every page records its headline for "Results at a glance" (salrank.viz.report.headline)
    from salrank.viz.report import HEADLINE_MIME

    assert any(HEADLINE_MIME in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", [])), \
        f"{path.name} records no headline"


# documents the code once cited that are not part of the repository (spelled in pieces so that this
# file does not cite them itself)
_OUTSIDE = ["paper" + "-notes", "docs/" + "peers", "docs/" + "unisal", "../" + "shared"]


def test_citations_point_into_the_repository():
    # interpretation decisions are cited from the book's Conventions page, and every section label
    # cited (conv-...) exists there
    import re

    conventions = (REPO / "book" / "conventions.md").read_text()
    labels = set(re.findall(r"^\((conv-[a-z0-9-]+)\)=$", conventions, flags=re.M))
    assert {"conv-ranks", "conv-point-in-box", "conv-eq4", "conv-ties", "conv-acb", "conv-ecs", "conv-nan",
            "conv-metrics", "conv-protocols"} <= labels
    files = [p for folder in ("salrank", "notebooks", "book", "tests", "benchmarks")
             for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".ipynb", ".md", ".yml")
             and "_build" not in p.parts and p.is_file()]
    files.append(REPO / "README.md")
    for path in files:
        text = path.read_text(errors="replace")
        assert not [s for s in _OUTSIDE if s in text], f"{path.relative_to(REPO)} cites a file outside the repository"
        cited = set(re.findall(r"\bconv-[a-z0-9]+(?:-[a-z0-9]+)*", text)) - {"conv-"}
        assert cited <= labels, f"{path.relative_to(REPO)} cites missing sections {sorted(cited - labels)}"
