"""Execute each notebook once per test session (papermill, sample profile) and remember the result.

Used by ``test_notebooks.py`` (one test per notebook) and ``test_book_browser.py`` (builds a
book from the executed notebooks and opens it in a real browser), so nothing runs twice.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[!_]*.ipynb"))


class NotebookRunner:
    """``runner.run(path)`` -> path of the executed copy (raises the execution error again on reuse)."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self._done: dict[Path, Path | BaseException] = {}

    def run(self, path: Path) -> Path:
        if path not in self._done:
            import papermill

            out = self.out_dir / path.name
            try:
                papermill.execute_notebook(
                    str(path),
                    str(out),
                    parameters={"profile": "sample"},
                    kernel_name="python3",
                    cwd=str(path.parent),
                    progress_bar=False,
                )
                self._done[path] = out
            except Exception as exc:  # remembered, re-raised for every caller
                self._done[path] = exc
        result = self._done[path]
        if isinstance(result, BaseException):
            raise result
        return result
