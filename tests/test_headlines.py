"""Headline records (salrank.viz.report.headline) and their collection into "Results at a glance"
by the book's extension, on a two-page Sphinx project built here."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from salrank.config import get_settings
from salrank.viz.report import HEADLINE_MIME, headline

REPO = Path(__file__).resolve().parents[1]


def test_headline_record_and_display():
    h = headline("Table II", "test SRCC, row 7", 0.41234, 0.805, settings=get_settings(profile="sample"),
                 protocol="SynthSal test split, 1 seed")
    assert h.record == {"page": "Table II", "quantity": "test SRCC, row 7", "ours": "0.412", "paper": "0.805",
                        "profile": "sample", "protocol": "SynthSal test split, 1 seed"}
    bundle = h._repr_mimebundle_()
    assert bundle[HEADLINE_MIME] == h.record
    assert bundle["text/markdown"].startswith("**Headline (Table II).** test SRCC, row 7: ours 0.412, paper 0.805")
    no_paper = headline("Fig. 9", "SRCC", "n/a", None, settings=get_settings(profile="full"), protocol="p", digits=2)
    assert no_paper.record["paper"] is None and no_paper.record["ours"] == "n/a"
    assert "paper" not in no_paper.markdown() and "`full`" in no_paper.markdown()
    with pytest.raises(ValueError, match="page and a quantity"):
        headline("", "SRCC", 1.0, settings=get_settings(profile="sample"), protocol="p")


def _notebook(path: Path, title: str, records: list[dict]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {title}"))
    cell = nbformat.v4.new_code_cell("headline(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={HEADLINE_MIME: r, "text/markdown": "x"})
                    for r in records]
    nb.cells.append(cell)
    nbformat.write(nb, path)


def test_results_page_collects_headlines_in_toc_order(tmp_path):
    from sphinx.application import Sphinx

    src = tmp_path / "src"
    src.mkdir()
    sys.path.insert(0, str(REPO / "book" / "_ext"))
    record = {"page": "P", "quantity": "Q", "ours": "0.500", "paper": None, "profile": "sample", "protocol": "pr"}
    _notebook(src / "b_page.ipynb", "B", [{**record, "page": "Table B"}])
    _notebook(src / "a_page.ipynb", "A", [{**record, "page": "Table A1"}, {**record, "page": "Table A2"}])
    (src / "results.md").write_text("# Results\n\n```{salrank-headlines}\n```\n")
    # the table follows the toctree (b before a), not the file names
    (src / "index.md").write_text("# Book\n\n```{toctree}\nb_page\na_page\nresults\n```\n")
    (src / "conf.py").write_text("extensions = ['myst_nb', 'salrank_book']\nnb_execution_mode = 'off'\n"
                                 "suppress_warnings = ['mystnb.unknown_mime_type']\n")
    out = tmp_path / "out"
    app = Sphinx(str(src), str(src), str(out / "html"), str(out / "doctrees"), "html", warningiserror=True,
                 status=None)
    app.build()
    page = (out / "html" / "results.html").read_text()
    assert page.index("Table B") < page.index("Table A1") < page.index("Table A2")
    assert 'class="salrank-headlines' in page and 'href="b_page.html"' in page
    assert "0.500" in page
    assert (out / "html" / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (out / "html" / "_static" / "salrank-vega.js").is_file()
