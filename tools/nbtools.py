"""Write notebooks from Python cell lists (used to author notebooks/ reproducibly).

    from tools.nbtools import md, code, params, write
    write("notebooks/x.ipynb", [md("# Title"), params("profile = None"), code("...")])

Notebooks are stored without outputs; the book and the tests execute them.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, *, hide: bool = False):
    cell = new_code_cell(text.strip("\n"))
    if hide:
        cell.metadata["tags"] = ["hide-input"]
    return cell


def params(text: str):
    cell = new_code_cell(text.strip("\n"))
    cell.metadata["tags"] = ["parameters"]
    return cell


def write(path: str | Path, cells) -> Path:
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    path = Path(path)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return path
