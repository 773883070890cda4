"""Every notebook executes on the sample profile (papermill), so CI catches a broken book page.

Notebooks share the session's cache directory (see conftest.py), as the book build does, so
features, trained sample models and generated sample data are computed once.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from notebook_runner import NOTEBOOKS


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


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_on_sample(path, notebook_runner):
    out = notebook_runner.run(path)
    nb = json.loads(out.read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # every page labels sample results as such
    assert "Sample result" in json.dumps(nb), f"{path.name} does not show the sample banner"
